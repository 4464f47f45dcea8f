# Builds and installs laminar (headers and the kernel library) into a scratch
# prefix, then configures, builds and runs the consumer project against it with
# find_package(laminar CONFIG REQUIRED), header-only and with laminar::kernels.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
foreach(step
    "${CMAKE_COMMAND};-S;${SOURCE_DIR};-B;${WORK_DIR}/laminar;-DLAMINAR_BUILD_TESTS=OFF;-DLAMINAR_BUILD_EXAMPLES=OFF;-DLAMINAR_BUILD_BENCHMARKS=OFF;-DLAMINAR_CUDA=OFF;-DCMAKE_INSTALL_PREFIX=${prefix};-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/laminar;--parallel;2"
    "${CMAKE_COMMAND};--install;${WORK_DIR}/laminar"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/consumer;-B;${WORK_DIR}/build;-DCMAKE_PREFIX_PATH=${prefix};-DCMAKE_CXX_COMPILER=${CXX_COMPILER};-DCMAKE_BUILD_TYPE=Release;-DCMAKE_CXX_FLAGS=-march=native"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/build;--parallel;2"
    "${WORK_DIR}/build/consumer"
    "${WORK_DIR}/build/consumer_kernels")
  execute_process(COMMAND ${step} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer: step failed: ${step}\n${out}\n${err}")
  endif()
  if(out MATCHES "consumer \\(")
    message("${out}")
    string(REGEX MATCH "loss [^\n]*" loss "${out}")
    list(APPEND losses "${loss}")
  endif()
endforeach()
# The same kernels, header-only or compiled once (both -O3 -march=native, as
# the library is by default), give the same numbers.
list(GET losses 0 header_only)
list(GET losses 1 compiled)
if(NOT header_only STREQUAL compiled)
  message(FATAL_ERROR "consumer: header-only \"${header_only}\" but laminar::kernels \"${compiled}\"")
endif()
