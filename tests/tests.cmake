# Test registry: unit tests are C executables (cmocka); integration tests run
# the real binary with real clients (Debian python3-websockets, npm ws,
# headless Chromium). All of them are ctest tests.
#
# A test that cannot check what it is for exits with IMGATE_SKIP_CODE (77),
# which ctest shows as "Skipped"; scripts/ctest-strict.sh (what `make test`
# runs) treats a skipped or missing entry as a failure. A test that can never
# run in a build is not registered there (valgrind under ASan).
set(IMGATE_SKIP_CODE 77)
file(GLOB UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE imgate_core PkgConfig::CMOCKA)
  add_test(NAME unit.${name} COMMAND ${name})
  set_tests_properties(unit.${name} PROPERTIES TIMEOUT 120)
endforeach()

# imgate-bench's JSON look-up is the bench's own code, not the server's.
target_sources(test_jscan PRIVATE ${CMAKE_SOURCE_DIR}/tools/bench/jscan.c)
target_include_directories(test_jscan PRIVATE ${CMAKE_SOURCE_DIR}/tools/bench)
# ... and so is its receive ring (--rx-ring).
target_sources(test_rxring PRIVATE ${CMAKE_SOURCE_DIR}/tools/bench/rxring.c)
target_include_directories(test_rxring PRIVATE ${CMAKE_SOURCE_DIR}/tools/bench)

set(PY /usr/bin/python3)
file(GLOB PY_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py)
if(IMGATE_SANITIZE)
  # valgrind and AddressSanitizer do not mix: the valgrind run is a normal-build test.
  list(FILTER PY_TESTS EXCLUDE REGEX "/test_valgrind\\.py$")
endif()
foreach(src ${PY_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME it.${name} COMMAND ${PY} ${src})
  set_tests_properties(it.${name} PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE ${IMGATE_SKIP_CODE}
    ENVIRONMENT "IMGATE_BIN=$<TARGET_FILE:imgate>;IMGATE_SANITIZE=${IMGATE_SANITIZE}")
endforeach()
# test_bench checks the tool's kernel memory per connection, a host-wide
# figure (Slab and TCP pages grown per connection): a test closing its
# sockets meanwhile shrinks it, even below zero, so nothing runs beside it.
set_tests_properties(it.test_bench PROPERTIES RUN_SERIAL TRUE)
# The write paths without io_uring (net/uring.h): where the kernel refuses
# one, each socket is written with its own system call.
foreach(name test_coalesce test_conn_core)
  add_test(NAME it.${name}.no_uring COMMAND ${PY} ${CMAKE_SOURCE_DIR}/tests/integration/${name}.py)
  set_tests_properties(it.${name}.no_uring PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE ${IMGATE_SKIP_CODE}
    ENVIRONMENT "IMGATE_BIN=$<TARGET_FILE:imgate>;IMGATE_SANITIZE=${IMGATE_SANITIZE};IMGATE_IO_URING=0")
endforeach()

file(GLOB JS_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/js/*.test.js)
foreach(src ${JS_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME js.${name} COMMAND ${CMAKE_SOURCE_DIR}/tests/run_node_test.sh ${src})
  set_tests_properties(js.${name} PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE ${IMGATE_SKIP_CODE}
    ENVIRONMENT "IMGATE_BIN=$<TARGET_FILE:imgate>;IMGATE_SANITIZE=${IMGATE_SANITIZE}")
endforeach()

# The fuzz targets (tests/fuzz) as plain programs: each replays its seed
# corpus and its crash regressions with the build's compiler and sanitizers.
file(GLOB FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(replay_${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
  target_link_libraries(replay_${name} PRIVATE imgate_core)
  add_test(NAME fuzz.${name} COMMAND replay_${name}
    ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/regressions/${name})
  set_tests_properties(fuzz.${name} PROPERTIES TIMEOUT 120)
endforeach()

# The benchmark figures in README.md and bench/README.md are generated from
# the committed results (bench/tables.py); this fails when they drift apart.
add_test(NAME docs.tables COMMAND ${PY} ${CMAKE_SOURCE_DIR}/bench/tables.py --check)
