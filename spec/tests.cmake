# Every test, run by ctest. Integration tests start the real space-server
# (the one this tree builds: a sanitizer build tests the sanitized binary).
set(SPEC ${CMAKE_SOURCE_DIR}/spec)
set(SERVER_ENV "SPACE_SERVER=$<TARGET_FILE:space-server>;SPACE_SCRIPTS=${CMAKE_SOURCE_DIR}/scripts")

include(${SPEC}/unit/unit.cmake OPTIONAL)

add_test(NAME lua_specs
  COMMAND ${SPEC}/lua/run-busted.sh
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})

find_program(NODE node)
if(EXISTS ${SPEC}/e2e/chat.test.js)
  add_test(NAME e2e_node COMMAND ${NODE} --test --test-concurrency=1 ${SPEC}/e2e/
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e_node PROPERTIES ENVIRONMENT "${SERVER_ENV}" TIMEOUT 300)
endif()
# The cluster (issue 13): a redis-server of its own on a free port, our nodes with --redis and
# Node socket.io peers (spec/cluster/peer.js) on it; skips itself when redis-server is missing.
# The files are named: spec/cluster/ also holds tests that other entries run.
if(EXISTS ${SPEC}/cluster/cluster.test.js)
  add_test(NAME cluster COMMAND ${NODE} --test --test-concurrency=1
    ${SPEC}/cluster/cluster.test.js ${SPEC}/cluster/redis_restart.test.js ${SPEC}/cluster/presence.test.js
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(cluster PROPERTIES ENVIRONMENT "${SERVER_ENV}" TIMEOUT 600)
endif()
if(EXISTS ${SPEC}/e2e/test_python_client.py)
  # Debian's python3 has python-socketio; a python3 earlier on PATH may not.
  add_test(NAME e2e_python COMMAND /usr/bin/python3 -m unittest discover -v -s ${SPEC}/e2e -p "test_python_*.py"
    WORKING_DIRECTORY ${SPEC}/e2e)
  set_tests_properties(e2e_python PROPERTIES ENVIRONMENT "${SERVER_ENV}" TIMEOUT 300)
endif()
# The web page in Debian's chromium (playwright-core); skips itself when either is missing.
# Screenshots go to <build>/test-output/browser.
if(EXISTS ${SPEC}/browser/chat.test.js)
  add_test(NAME e2e_browser COMMAND ${NODE} --test ${SPEC}/browser/
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e_browser PROPERTIES TIMEOUT 300
    ENVIRONMENT "${SERVER_ENV};SPACE_TEST_OUTPUT=${CMAKE_BINARY_DIR}/test-output/browser")
endif()
if(EXISTS ${SPEC}/protocol-suite/protocol_suite.test.js)
  add_test(NAME protocol_suite COMMAND ${NODE} --test ${SPEC}/protocol-suite/
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(protocol_suite PROPERTIES ENVIRONMENT "${SERVER_ENV}" TIMEOUT 120)
endif()

# cmake --install into a fresh prefix: the files are there and the installed
# binary starts on the installed scripts and plugins.
add_test(NAME install COMMAND bash ${SPEC}/install/install_test.sh ${CMAKE_BINARY_DIR})
set_tests_properties(install PROPERTIES TIMEOUT 120)

if(SPACE_FUZZ)
  include(${SPEC}/fuzz/fuzz.cmake OPTIONAL)
endif()

# The benchmark harness builds and each scenario completes a 2-second run
# with 0 lost deliveries (no timing is asserted: speed lives in bench/).
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/compare)
  add_test(NAME bench_smoke COMMAND ${CMAKE_SOURCE_DIR}/bench/compare --smoke)
  set_tests_properties(bench_smoke PROPERTIES TIMEOUT 120 ENVIRONMENT "SERVER_BIN=$<TARGET_FILE:space-server>")
endif()

# The cluster benchmark (issue 13): one node, then two nodes on a redis-server of its own,
# 2 s each with the room's members spread over both; fails when a delivery was lost, skips
# itself (77) when redis-server is missing.
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/cluster)
  add_test(NAME cluster_bench_smoke COMMAND ${CMAKE_SOURCE_DIR}/bench/cluster --smoke)
  set_tests_properties(cluster_bench_smoke PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
    ENVIRONMENT "SERVER_BIN=$<TARGET_FILE:space-server>")
endif()

# The soak harness: 20 s of churn, chat, uploads, reloads and refused inputs;
# fails when a delivery was lost, a request went unanswered, a file
# descriptor leaked or a gauge stayed off idle (RSS flatness needs bench/soak's
# full duration).
if(EXISTS ${CMAKE_SOURCE_DIR}/bench/soak)
  add_test(NAME soak_smoke COMMAND ${CMAKE_SOURCE_DIR}/bench/soak --smoke)
  set_tests_properties(soak_smoke PROPERTIES TIMEOUT 180 ENVIRONMENT "SERVER_BIN=$<TARGET_FILE:space-server>")
endif()

# --workers: two processes on one port with a real redis-server (skips itself without redis-server).
if(EXISTS ${SPEC}/cluster/workers.test.js)
  add_test(NAME workers COMMAND ${NODE} --test ${SPEC}/cluster/workers.test.js
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(workers PROPERTIES ENVIRONMENT "${SERVER_ENV}" TIMEOUT 300)
endif()
