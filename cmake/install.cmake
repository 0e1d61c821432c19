# cmake --install: the binary, the default scripts and plugins, the systemd
# unit (its /usr/local paths rewritten to the install prefix) and the docs.
#   <prefix>/bin/space-server
#   <prefix>/share/space-server/{scripts,plugins}/
#   <prefix>/lib/systemd/system/space-server.service
#   <prefix>/share/doc/space-server/{README.md,*.md,ops/}
install(TARGETS space-server RUNTIME DESTINATION bin)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/scripts/ DESTINATION share/space-server/scripts)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/plugins/ DESTINATION share/space-server/plugins)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION share/doc/space-server)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ DESTINATION share/doc/space-server)
install(FILES ${CMAKE_SOURCE_DIR}/examples/ops/nginx.conf ${CMAKE_SOURCE_DIR}/examples/ops/grafana-dashboard.json
        ${CMAKE_SOURCE_DIR}/examples/ops/space-server.service DESTINATION share/doc/space-server/ops)
# The prefix is known only at install time (cmake --install --prefix P).
install(CODE "
  file(READ \"${CMAKE_SOURCE_DIR}/examples/ops/space-server.service\" unit)
  string(REPLACE \"/usr/local/\" \"\${CMAKE_INSTALL_PREFIX}/\" unit \"\${unit}\")
  set(dst \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/space-server.service\")
  message(STATUS \"Installing: \${dst}\")
  file(WRITE \"\${dst}\" \"\${unit}\")
")
