// Dropout<Rate>: inverted dropout (Srivastava et al. 2014). In training each
// element is kept with probability 1 - Rate and scaled by 1 / (1 - Rate); in
// evaluation it is the identity. The mask is a pure function of
// (seed, layer stream, step, element) through Philox, so backward recomputes it
// instead of storing it, and every backend draws the same mask.
#pragma once

#include "../core/philox.hpp"
#include "layer.hpp"

namespace laminar {

namespace detail {
// The mask over a batch of shape S whose memory is in the blocked layout of
// Block-channel blocks (Blocked) or planar. Each element draws at its planar
// index, so the mask is the same in either layout.
template <class T, class S, bool Blocked, int Block>
struct DropoutMask {
  using expr_node = void;
  static constexpr bool per_channel = false;
  std::uint64_t seed;
  std::uint32_t stream, step;
  float rate;
  T scale;
  LAMINAR_HD T operator()(long i, int) const {
    return philox::uniform(seed, stream, step, std::uint64_t(planar_index(i))) >= rate ? scale : T(0);
  }
  LAMINAR_HD static long planar_index(long i) {
    if constexpr (Blocked) {
      long c, p;
      channel_and_pixel<S, true, Block>(i % S::size, c, p);
      return element_offset<S, false, Block>(i / S::size, c, p);
    } else {
      return i;
    }
  }
};
}  // namespace detail

template <double Rate>
struct Dropout : Stateless {
  static_assert(Rate >= 0.0 && Rate < 1.0, "DROPOUT_RATE_MUST_BE_IN_0_1");

  static std::string name() { return "Dropout<" + detail::number(Rate) + ">"; }

  template <class In>
  static consteval auto output_shape() {
    return In{};
  }
  template <class In>
  static constexpr double flops = double(In::size);

  template <class In, class T, class B>
  class Layer : public Stateless {
   public:
    static constexpr bool layout_aware = true;

    void set_stream(std::uint32_t stream) { stream_ = stream; }

    // Backward uses the mask of the last forward, whatever the context says by then.
    void forward(Context<B>& ctx, const T* x, T* y, int batch) {
      dropped_ = ctx.training;
      seed_ = ctx.seed;
      step_ = ctx.step;
      layout_ = layout_of<In>(ctx);
      apply(x, y, batch);
    }
    void backward(Context<B>&, const T*, const T*, const T* dy, T* dx, int batch) {
      if (dx) apply(dy, dx, batch);
    }

   private:
    // out = in times the mask of the last forward, or a copy where it dropped nothing.
    void apply(const T* in, T* out, int batch) const {
      const long n = long(batch) * In::size;
      if (!dropped_) return ops<B>::copy(out, in, n);
      if (layout_ == Layout::blocked)
        ops<B>::eval(out, n, expr::in(in) * mask<true>());
      else
        ops<B>::eval(out, n, expr::in(in) * mask<false>());
    }
    template <bool Blocked>
    detail::DropoutMask<T, In, Blocked, channel_block_of<B>> mask() const {
      return {seed_, stream_, step_, float(Rate), T(1.0 / (1.0 - Rate))};
    }
    std::uint32_t stream_ = 0;
    bool dropped_ = false;
    Layout layout_ = Layout::planar;
    std::uint64_t seed_ = 0;
    std::uint32_t step_ = 0;
  };
};

}  // namespace laminar
