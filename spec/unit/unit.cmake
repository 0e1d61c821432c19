# C unit tests: one executable per spec/unit/test_<name>.c, registered with
# ctest as unit_<name>. Included from the top-level CMakeLists (after the
# space_codec and space_core targets exist), e.g. from spec/tests.cmake:
#   include(${CMAKE_SOURCE_DIR}/spec/unit/unit.cmake)
# Run: ctest --test-dir <build> -L unit --output-on-failure
include_guard(GLOBAL)

set(SPACE_UNIT_DIR ${CMAKE_SOURCE_DIR}/spec/unit)

# Pure codecs: link space_codec only.
set(SPACE_UNIT_CODEC_TESTS http ws_codec eio_packet sio_packet utf8 hmap sbuf buf filecheck wire_base64 json_scan jwt wheel wsjson
  pattern_cost)
# Modules that live in space_core (libuv, Lua and wslay come along).
set(SPACE_UNIT_CORE_TESTS room user)

foreach(name IN LISTS SPACE_UNIT_CODEC_TESTS SPACE_UNIT_CORE_TESTS)
  add_executable(test_${name} ${SPACE_UNIT_DIR}/test_${name}.c)
  target_include_directories(test_${name} PRIVATE ${SPACE_UNIT_DIR} ${SPACE_CORE_INCLUDES})
  if(name IN_LIST SPACE_UNIT_CORE_TESTS)
    target_link_libraries(test_${name} PRIVATE space_core)
  else()
    target_link_libraries(test_${name} PRIVATE space_codec)
  endif()
  set_target_properties(test_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/spec/unit)
  add_test(NAME unit_${name} COMMAND test_${name})
  set_tests_properties(unit_${name} PROPERTIES LABELS unit TIMEOUT 300)
endforeach()

# json_lua: the Lua JSON codec alone (its own source, the codecs and Lua), not the whole core.
add_executable(test_json_lua ${SPACE_UNIT_DIR}/test_json_lua.c ${CMAKE_SOURCE_DIR}/core/lua/json_lua.c)
target_include_directories(test_json_lua PRIVATE ${SPACE_UNIT_DIR} ${SPACE_CORE_INCLUDES})
target_link_libraries(test_json_lua PRIVATE space_codec PkgConfig::LUA m)
set_target_properties(test_json_lua PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/spec/unit)
add_test(NAME unit_json_lua COMMAND test_json_lua)
set_tests_properties(unit_json_lua PROPERTIES LABELS unit TIMEOUT 300)
