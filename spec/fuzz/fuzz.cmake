# libFuzzer targets for the parsers. Included from the top-level CMakeLists
# scope (spec/tests.cmake); does nothing unless SPACE_FUZZ is ON, which needs
# clang:
#   CC=clang cmake -S . -B build-fuzz -DSPACE_FUZZ=ON
#   cmake --build build-fuzz --target space_fuzzers
#   ctest --test-dir build-fuzz -L fuzz --output-on-failure
# or spec/fuzz/run.sh [seconds].
#
# Each fuzzer compiles the core sources it needs itself (the space_codec
# library is built without the fuzzer instrumentation). ctest runs each one
# for SPACE_FUZZ_SECONDS (default 20) on a scratch corpus in the build tree
# seeded from spec/fuzz/corpus/<name>/ (the source tree is never written);
# crashes land in <build>/fuzz/artifacts/. fuzz_<name>_regressions replays
# the crash inputs saved in spec/fuzz/regressions/<name>/ (spec/fuzz/campaign).
include_guard(GLOBAL)

if(NOT SPACE_FUZZ)
  return()
endif()
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SPACE_FUZZ needs clang (libFuzzer): configure with CC=clang "
                      "(found ${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER})")
endif()

set(SPACE_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz_* ctest runs")
set(SPACE_FUZZ_DIR ${CMAKE_SOURCE_DIR}/spec/fuzz)
set(SPACE_FUZZ_CORE ${CMAKE_SOURCE_DIR}/core)
set(SPACE_FUZZ_OUT ${CMAKE_BINARY_DIR}/fuzz)
set(SPACE_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
                     -fno-omit-frame-pointer -g)

add_custom_target(space_fuzzers)

# space_fuzz(<name> <core sources...> [LIBS <libs...>])
function(space_fuzz name)
  cmake_parse_arguments(F "" "" "LIBS" ${ARGN})
  set(target fuzz_${name})
  list(TRANSFORM F_UNPARSED_ARGUMENTS PREPEND ${SPACE_FUZZ_CORE}/)
  add_executable(${target} ${SPACE_FUZZ_DIR}/${target}.c ${F_UNPARSED_ARGUMENTS})
  target_include_directories(${target} PRIVATE ${SPACE_CORE_INCLUDES})
  target_compile_options(${target} PRIVATE ${SPACE_FUZZ_FLAGS})
  target_link_options(${target} PRIVATE ${SPACE_FUZZ_FLAGS})
  if(F_LIBS)
    target_link_libraries(${target} PRIVATE ${F_LIBS})
  endif()
  set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${SPACE_FUZZ_OUT})
  add_dependencies(space_fuzzers ${target})

  file(MAKE_DIRECTORY ${SPACE_FUZZ_OUT}/corpus/${name} ${SPACE_FUZZ_OUT}/artifacts)
  set(args -max_total_time=${SPACE_FUZZ_SECONDS} -rss_limit_mb=2048 -timeout=10
           -print_final_stats=1 -artifact_prefix=${SPACE_FUZZ_OUT}/artifacts/${name}-)
  if(EXISTS ${SPACE_FUZZ_DIR}/${name}.dict)
    list(APPEND args -dict=${SPACE_FUZZ_DIR}/${name}.dict)
  endif()
  # New inputs go to the first directory (build tree); the seeds are read only.
  add_test(NAME ${target}
    COMMAND ${target} ${args} ${SPACE_FUZZ_OUT}/corpus/${name} ${SPACE_FUZZ_DIR}/corpus/${name}
    WORKING_DIRECTORY ${SPACE_FUZZ_OUT})
  math(EXPR timeout "${SPACE_FUZZ_SECONDS} + 120")
  set_tests_properties(${target} PROPERTIES LABELS fuzz TIMEOUT ${timeout})

  # Every crash input a campaign saved (spec/fuzz/campaign): run once each, so a fixed crash stays
  # fixed. libFuzzer given only files runs each of them and exits non-zero on the first failure.
  file(GLOB regressions CONFIGURE_DEPENDS ${SPACE_FUZZ_DIR}/regressions/${name}/*)
  if(regressions)
    add_test(NAME ${target}_regressions COMMAND ${target} -rss_limit_mb=2048 -timeout=10 ${regressions}
      WORKING_DIRECTORY ${SPACE_FUZZ_OUT})
    set_tests_properties(${target}_regressions PROPERTIES LABELS fuzz TIMEOUT 120)
  endif()
endfunction()

space_fuzz(http proto/http.c)
space_fuzz(sio_packet proto/sio_packet.c base/sbuf.c)
space_fuzz(eio_packet proto/eio_packet.c base/sbuf.c)
space_fuzz(utf8 base/utf8.c)
space_fuzz(ws_accept proto/ws_codec.c LIBS OpenSSL::Crypto)
# Client frame headers the WebSocket transport parses itself (small whole frames), and unmasking.
space_fuzz(ws_frame proto/ws_codec.c LIBS OpenSSL::Crypto)
# Not a codec the brief listed, but a parser of client bytes ("b<base64>" packets).
space_fuzz(base64 base/base64.c)
# File names and contents from clients (send_file), judged before anything is stored.
space_fuzz(filecheck proto/filecheck.c base/utf8.c)
# Tokens from clients: jwt_verify with HMAC, RSA and P-256 keys (signature-first invariants).
space_fuzz(jwt proto/jwt.c proto/json_scan.c base/json_str.c base/base64.c base/utf8.c proto/http.c base/sbuf.c LIBS OpenSSL::Crypto)
# The C side's JSON reads (JWT header and claims, admin API bodies) against a reference validator.
space_fuzz(json_scan proto/json_scan.c base/json_str.c base/utf8.c proto/http.c base/sbuf.c)
# Plain /ws frames and the JSON limits of client messages (json_check) against json_valid.
space_fuzz(wsjson proto/wsjson.c proto/json_scan.c base/json_str.c base/utf8.c proto/http.c proto/sio_packet.c base/sbuf.c)
# Every client payload's JSON -> Lua values: against json_scan's validator, and encode/decode round trips.
space_fuzz(json_lua lua/json_lua.c proto/json_scan.c base/json_str.c base/utf8.c proto/http.c base/sbuf.c LIBS PkgConfig::LUA m)
# The same decoder against lua-cjson (the reference) in the same Lua state: values deeply equal.
space_fuzz(json_lua_oracle lua/json_lua.c proto/json_scan.c base/json_str.c base/utf8.c proto/http.c base/sbuf.c LIBS PkgConfig::LUA m)
# Messages from other cluster nodes over Redis (msgpack and JSON): decode never crashes, decode -> encode is stable.
space_fuzz(redis_wire proto/redis_wire.c proto/json_scan.c base/json_str.c base/utf8.c proto/http.c base/sbuf.c
  LIBS PkgConfig::MSGPACK m)
# Cluster presence messages from the other nodes (Redis): the replica's invariants, refusals change nothing.
space_fuzz(presence cluster/presence.c proto/json_scan.c base/json_str.c base/utf8.c proto/http.c base/sbuf.c base/hmap.c)
target_include_directories(fuzz_presence PRIVATE ${SPACE_FUZZ_CORE}/cluster)
