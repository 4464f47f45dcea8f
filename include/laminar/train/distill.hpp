// Knowledge distillation's teacher (Hinton et al. 2015): any trained Model,
// held by reference and type-erased so FitOptions stays one plain struct. fit
// runs the teacher in evaluation mode on each training batch and trains the
// student on loss::Distillation against its logits.
//
//   train::fit(student, opt, data, {.teacher = train::distill(teacher, {.alpha = 0.5, .temperature = 4})});
#pragma once

#include <functional>
#include <string>
#include <typeindex>
#include <typeinfo>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "loss.hpp"

namespace laminar::train {

class Teacher {
 public:
  Teacher() = default;

  template <class M>
  Teacher(M& model, loss::Distillation loss)
      : loss_(loss),
        value_type_(typeid(typename M::value_type)),
        backend_(typeid(typename M::backend)),
        input_(typeid(typename M::input_shape)),
        output_(typeid(typename M::output_shape)),
        description_(M::input_shape::name() + " -> " + M::output_shape::name() + ", " + M::backend::name) {
    using T = typename M::value_type;
    forward_ = [&model](const void* x, int batch) -> const void* {
      const bool was_training = model.training();
      model.eval();
      const auto y = model.forward(View<const T, typename M::backend, typename M::input_shape>{
          static_cast<const T*>(x), batch});
      model.train(was_training);
      return y.data;
    };
  }

  explicit operator bool() const { return bool(forward_); }
  const loss::Distillation& loss() const { return loss_; }

  // A teacher must read the student's batches and produce logits like its own.
  template <class Student>
  void check_fits() const {
    if (value_type_ != typeid(typename Student::value_type) || backend_ != typeid(typename Student::backend) ||
        input_ != typeid(typename Student::input_shape) || output_ != typeid(typename Student::output_shape))
      throw Error("distillation: the teacher (" + description_ + ") does not match the student (" +
                  Student::input_shape::name() + " -> " + Student::output_shape::name() + ", " +
                  Student::backend::name + "); both need the same input, output, backend and element type");
  }

  // The teacher's logits for `batch` samples at x, valid until its next forward.
  template <class T>
  const T* logits(const T* x, int batch) const {
    return static_cast<const T*>(forward_(x, batch));
  }

 private:
  loss::Distillation loss_;
  std::function<const void*(const void*, int)> forward_;
  std::type_index value_type_ = typeid(void), backend_ = typeid(void), input_ = typeid(void), output_ = typeid(void);
  std::string description_;
};

// The teacher argument of FitOptions: fit(student, ..., {.teacher = distill(teacher)}).
template <class M>
Teacher distill(M& teacher, loss::Distillation loss = {}) {
  return Teacher(teacher, loss);
}

}  // namespace laminar::train
