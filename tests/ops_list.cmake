# ctest test_ops_list: every function cp.h declares is either an operation of
# include/cp/ops.h's CP_OPS (every backend implements it, core/backend.c
# generates its generic entry) or defined by hand in core/*.c (ctx, event,
# timer, fd wait, the registry). A new per-backend operation declared in cp.h
# and left out of ops.h fails here. (The other direction is a compile error:
# core/backend.c defines every CP_OPS entry with cp.h in scope, under
# -Werror=missing-prototypes, so types that differ or an entry cp.h lacks
# stop the build.)
#   cmake -DSRC=<source dir> [-DCP_H=<another cp.h>] -P tests/ops_list.cmake
if(NOT CP_H)
  set(CP_H ${SRC}/include/cp/cp.h)
endif()
file(READ ${SRC}/include/cp/ops.h ops)
string(REGEX MATCHALL "X\\(a, *[A-Z]+, *[^,]+, *[a-z_]+," entries "${ops}")
set(op_names)
foreach(e ${entries})
  string(REGEX REPLACE ".*, *([a-z_]+),$" "\\1" n "${e}")
  list(APPEND op_names cp_${n})
endforeach()
list(LENGTH op_names nops)
if(nops EQUAL 0)
  message(FATAL_ERROR "no operation found in include/cp/ops.h")
endif()

file(GLOB core_srcs ${SRC}/core/*.c)
set(core_text "")
foreach(f ${core_srcs})
  file(READ ${f} t)
  string(APPEND core_text "\n${t}")
endforeach()

file(STRINGS ${CP_H} decls REGEX "^(const )?[a-z_0-9]+ *\\** *cp_[a-z0-9_]+\\(")
set(bad 0)
set(nfree 0)
foreach(d ${decls})
  string(REGEX REPLACE "^[^(]*[ *](cp_[a-z0-9_]+)\\(.*" "\\1" name "${d}")
  list(FIND op_names ${name} i)
  if(i GREATER -1)
    continue()
  endif()
  # defined by hand in core/: a line starting at column 0 that names it
  if(core_text MATCHES "\n[a-z][^;\n]*[ *]${name}\\(")
    math(EXPR nfree "${nfree} + 1")
    continue()
  endif()
  message(SEND_ERROR "cp.h declares ${name}, which is neither in include/cp/ops.h's CP_OPS nor defined in core/")
  set(bad 1)
endforeach()
list(LENGTH decls ndecls)
if(NOT bad)
  message(STATUS "test_ops_list: ${ndecls} functions in cp.h: ${nops} operations of ops.h, ${nfree} defined in core/")
endif()
