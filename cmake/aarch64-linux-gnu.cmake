# cmake/aarch64-linux-gnu.cmake - CMake toolchain file: cross-build strand for 64-bit Arm Linux
# with Debian's gcc-aarch64-linux-gnu, and run the built programs (ctest) under qemu-user.
#
# Libraries for the target come from Debian multiarch (dpkg --add-architecture arm64; e.g.
# libcmocka-dev:arm64 in /usr/lib/aarch64-linux-gnu), found through CMAKE_LIBRARY_ARCHITECTURE;
# Programs link against the cross libc in /usr/aarch64-linux-gnu.
#
# Running them: qemu-aarch64 needs a root (-L) holding the arm64 dynamic loader and libraries.
# We use / (Debian multiarch: libc6:arm64, pulled in by libcmocka0:arm64, in /lib/aarch64-linux-gnu)
# when it is there, because with `-L /usr/aarch64-linux-gnu` (the cross libc 2.36-8cross1) a
# dynamically linked program hangs in the child after fork() under Debian 12's qemu-user 7.2,
# and the crash tests fork. Without multiarch we fall back to /usr/aarch64-linux-gnu.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Never pick up a host (x86_64) program as a target tool, nor a host library.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

find_program(STRAND_QEMU_AARCH64 qemu-aarch64)
if(EXISTS /lib/aarch64-linux-gnu/libc.so.6 AND EXISTS /lib/ld-linux-aarch64.so.1)
  set(STRAND_QEMU_ROOT /)
else()
  set(STRAND_QEMU_ROOT /usr/aarch64-linux-gnu)
endif()
if(STRAND_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${STRAND_QEMU_AARCH64} -L ${STRAND_QEMU_ROOT})
endif()
