# C unit tests: one executable per spec/unit/test_<name>.c, registered with
# ctest as unit_<name>. Included from the top-level CMakeLists (after the
# space_<layer> targets exist), e.g. from spec/tests.cmake:
#   include(${CMAKE_SOURCE_DIR}/spec/unit/unit.cmake)
# Run: ctest --test-dir <build> -L unit --output-on-failure
include_guard(GLOBAL)

set(SPACE_UNIT_DIR ${CMAKE_SOURCE_DIR}/spec/unit)

# Each test links only the layer of the module it tests (and so the layers
# below it): a test of user.c needs no server.
set(SPACE_UNIT_TESTS_base utf8 hmap sbuf buf wheel base64 ids)
set(SPACE_UNIT_TESTS_proto http ws_codec eio_packet sio_packet filecheck json_scan jwt wsjson
  pattern_cost etag redis_wire redis_url)
set(SPACE_UNIT_TESTS_socketio room user recovery)
set(SPACE_UNIT_TESTS_files file_store)
set(SPACE_UNIT_TESTS_history history)
# redis_link starts its own redis-server children (it fails, with a message, without one).
set(SPACE_UNIT_TESTS_cluster redis_link)

foreach(layer base proto socketio files history cluster lua)
  foreach(name IN LISTS SPACE_UNIT_TESTS_${layer})
    add_executable(test_${name} ${SPACE_UNIT_DIR}/test_${name}.c)
    target_include_directories(test_${name} PRIVATE ${SPACE_UNIT_DIR})
    target_link_libraries(test_${name} PRIVATE space_${layer})
    set_target_properties(test_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/spec/unit)
    add_test(NAME unit_${name} COMMAND test_${name})
    set_tests_properties(unit_${name} PROPERTIES LABELS unit TIMEOUT 300)
  endforeach()
  if(layer STREQUAL "cluster")
    set_tests_properties(unit_redis_link PROPERTIES TIMEOUT 180)
  endif()
endforeach()

# json_lua: the Lua layer's JSON codec alone (its own source, the codecs below and Lua), not the whole host.
add_executable(test_json_lua ${SPACE_UNIT_DIR}/test_json_lua.c ${CMAKE_SOURCE_DIR}/core/lua/json_lua.c)
target_include_directories(test_json_lua PRIVATE ${SPACE_UNIT_DIR} ${CMAKE_SOURCE_DIR}/core/lua)
target_link_libraries(test_json_lua PRIVATE space_proto PkgConfig::LUA m)
set_target_properties(test_json_lua PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/spec/unit)
add_test(NAME unit_json_lua COMMAND test_json_lua)
set_tests_properties(unit_json_lua PROPERTIES LABELS unit TIMEOUT 300)

# presence: the cluster's replica of the other nodes' rooms (core/cluster), alone over the codecs below.
add_executable(test_presence ${SPACE_UNIT_DIR}/test_presence.c ${CMAKE_SOURCE_DIR}/core/cluster/presence.c)
target_include_directories(test_presence PRIVATE ${SPACE_UNIT_DIR} ${CMAKE_SOURCE_DIR}/core/cluster)
target_link_libraries(test_presence PRIVATE space_proto)
set_target_properties(test_presence PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/spec/unit)
add_test(NAME unit_presence COMMAND test_presence)
set_tests_properties(unit_presence PROPERTIES LABELS unit TIMEOUT 300)
