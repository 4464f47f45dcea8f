# Installs laminar into a scratch prefix, then configures, builds and runs the
# consumer project against it with find_package(laminar CONFIG REQUIRED).
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
foreach(step
    "${CMAKE_COMMAND};-S;${SOURCE_DIR};-B;${WORK_DIR}/laminar;-DLAMINAR_BUILD_TESTS=OFF;-DLAMINAR_BUILD_EXAMPLES=OFF;-DLAMINAR_BUILD_BENCHMARKS=OFF;-DLAMINAR_CUDA=OFF;-DCMAKE_INSTALL_PREFIX=${prefix}"
    "${CMAKE_COMMAND};--install;${WORK_DIR}/laminar"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/consumer;-B;${WORK_DIR}/build;-DCMAKE_PREFIX_PATH=${prefix};-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/build"
    "${WORK_DIR}/build/consumer")
  execute_process(COMMAND ${step} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer: step failed: ${step}\n${out}\n${err}")
  endif()
endforeach()
message("${out}")
