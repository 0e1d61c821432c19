# CMAKE_PROJECT_INCLUDE hook used by run.sh: includes spec/fuzz/fuzz.cmake at
# the end of the top-level CMakeLists (after space_codec exists) whether or
# not spec/tests.cmake includes it; fuzz.cmake's include_guard makes a
# second include a no-op.
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL include ${CMAKE_SOURCE_DIR}/spec/fuzz/fuzz.cmake)
