# After a ctest run (CTEST_CUSTOM_POST_TEST): why the tests that skipped
# themselves did, from the log they append to (ctest itself shows only
# "***Skipped").   cmake -DLOG=FILE -P skipped.cmake
if(EXISTS "${LOG}")
  file(READ "${LOG}" reasons)
  if(NOT reasons STREQUAL "")
    execute_process(COMMAND ${CMAKE_COMMAND} -E echo "Why the skipped tests were skipped:")
    string(REGEX REPLACE "\n$" "" reasons "${reasons}")
    execute_process(COMMAND ${CMAKE_COMMAND} -E echo "${reasons}")
  endif()
endif()
