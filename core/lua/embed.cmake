# Turns a Lua source file into a C header holding it as a byte array, so
# the server carries its own Lua modules (no install path to find them in).
# Usage: cmake -DIN=file.lua -DOUT=file.h -DNAME=symbol -P embed.cmake
file(READ ${IN} HEX HEX)
string(LENGTH "${HEX}" N)
math(EXPR BYTES "${N} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," BODY "${HEX}")
string(REGEX REPLACE "((0x..,){20})" "\\1\n" BODY "${BODY}")
file(WRITE ${OUT} "/* Generated from ${IN}; do not edit. */\nstatic const unsigned char ${NAME}[${BYTES}] = {\n${BODY}\n};\n")
