# CIFAR-10 training batches ship xz-compressed beside the repository
# (../shared/data/cifar10); the tests and the CIFAR-10 examples read the
# decompressed files from the build tree, build/data/cifar10, which is the
# examples' default --data. Defines the target laminar_cifar10_data and the
# variables LAMINAR_CIFAR10_BUILD_DIR and LAMINAR_CIFAR10_XZ_FOUND (the
# compressed batches are there: without them the tests cannot build, while the
# examples still do and read whatever --data names).
set(LAMINAR_CIFAR10_XZ_DIR "${PROJECT_SOURCE_DIR}/../shared/data/cifar10"
    CACHE PATH "Folder with CIFAR-10 data_batch_N.bin.xz")
if(EXISTS "${LAMINAR_CIFAR10_XZ_DIR}/data_batch_1.bin.xz")
  set(LAMINAR_CIFAR10_XZ_FOUND ON)
else()
  set(LAMINAR_CIFAR10_XZ_FOUND OFF)
  message(STATUS "laminar: no CIFAR-10 data_batch_N.bin.xz in ${LAMINAR_CIFAR10_XZ_DIR} "
                 "(set LAMINAR_CIFAR10_XZ_DIR); the examples will need --data")
endif()
set(LAMINAR_CIFAR10_BUILD_DIR "${CMAKE_BINARY_DIR}/data/cifar10")
set(laminar_cifar10_files)
foreach(n 1 2 3 4 5)
  set(out "${LAMINAR_CIFAR10_BUILD_DIR}/data_batch_${n}.bin")
  set(in "${LAMINAR_CIFAR10_XZ_DIR}/data_batch_${n}.bin.xz")
  # Into a .part file first, so an interrupted build leaves no truncated batch.
  add_custom_command(OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${LAMINAR_CIFAR10_BUILD_DIR}"
    COMMAND sh -c "xz -dc \"$1\" > \"$2.part\" && mv \"$2.part\" \"$2\"" sh "${in}" "${out}"
    DEPENDS "${in}"
    COMMENT "Decompressing CIFAR-10 data_batch_${n}"
    VERBATIM)
  list(APPEND laminar_cifar10_files "${out}")
endforeach()
add_custom_target(laminar_cifar10_data DEPENDS ${laminar_cifar10_files})
