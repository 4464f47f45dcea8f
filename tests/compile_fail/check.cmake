# Compiles SOURCE, which must fail, and requires every string in EXPECT
# (separated by '|') in the compiler's output.
execute_process(COMMAND ${COMPILER} -std=c++20 -fsyntax-only -fopenmp -I${INCLUDE_DIR} -I${EIGEN_DIR} ${SOURCE}
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(text "${out}${err}")
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must be rejected")
endif()
string(REPLACE "|" ";" expected "${EXPECT}")
foreach(piece IN LISTS expected)
  string(FIND "${text}" "${piece}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the compiler's output lacks '${piece}':\n${text}")
  endif()
endforeach()
message("${SOURCE} is rejected with:\n${text}")
