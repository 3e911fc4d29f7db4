# add_bpf_object(TARGET NAME <stem> SOURCE <file.bpf.c> SKELETON <skeleton name>
#                [DEFINES NAME[=VALUE]...] [INCLUDES dir...] [DEPENDS file...])
#
# One BPF object: compiles SOURCE with clang -target bpf into
# ${CMAKE_CURRENT_BINARY_DIR}/<stem>.bpf.o and generates the libbpf skeleton
# header <stem>.skel.h (struct SKELETON) from it. TARGET becomes a custom
# target building both; ${TARGET}_OBJECT and ${TARGET}_SKELETON name the
# files in the caller's scope. BPF_CLANG, BPFTOOL and PORTMUX_MULTIARCH
# come from the top-level CMakeLists.txt.
function(add_bpf_object target)
  cmake_parse_arguments(ARG "" "NAME;SOURCE;SKELETON" "DEFINES;INCLUDES;DEPENDS" ${ARGN})
  if(NOT ARG_NAME OR NOT ARG_SOURCE OR NOT ARG_SKELETON)
    message(FATAL_ERROR "add_bpf_object(${target}): NAME, SOURCE and SKELETON are required")
  endif()
  get_filename_component(source ${ARG_SOURCE} ABSOLUTE)
  set(object ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.bpf.o)
  set(skeleton ${CMAKE_CURRENT_BINARY_DIR}/${ARG_NAME}.skel.h)
  set(flags)
  foreach(define IN LISTS ARG_DEFINES)
    list(APPEND flags -D${define})
  endforeach()
  foreach(dir IN LISTS ARG_INCLUDES)
    list(APPEND flags -I${dir})
  endforeach()
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/xdp/*.h)
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -Wall -Werror ${flags}
            -I${PROJECT_SOURCE_DIR}/common -I${PROJECT_SOURCE_DIR}/xdp
            -I/usr/include/${PORTMUX_MULTIARCH}
            -c ${source} -o ${object}
    DEPENDS ${source} ${headers} ${PROJECT_SOURCE_DIR}/common/portmux_shared.h ${ARG_DEPENDS}
    COMMENT "Compiling BPF object ${ARG_NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skeleton}
    COMMAND ${BPFTOOL} gen skeleton ${object} name ${ARG_SKELETON} > ${skeleton}
    DEPENDS ${object}
    COMMENT "Generating libbpf skeleton ${ARG_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${target} DEPENDS ${object} ${skeleton})
  set(${target}_OBJECT ${object} PARENT_SCOPE)
  set(${target}_SKELETON ${skeleton} PARENT_SCOPE)
endfunction()
