# portmux_bpf_skeleton(TARGET SOURCE SKELETON_NAME): compiles SOURCE (a
# *.bpf.c in the calling directory) with clang -target bpf, using the same
# flags as xdp/, turns the object into a libbpf skeleton header
# SKELETON_NAME.skel.h, and makes TARGET an INTERFACE library that carries
# the header's include directory and libbpf. One call per BPF object.
# BPF_CLANG, BPFTOOL and PORTMUX_MULTIARCH come from the top-level CMakeLists.txt.
function(portmux_bpf_skeleton target source skeleton_name)
  get_filename_component(stem ${source} NAME_WE)
  set(object ${CMAKE_CURRENT_BINARY_DIR}/${stem}.bpf.o)
  set(skeleton ${CMAKE_CURRENT_BINARY_DIR}/${skeleton_name}.skel.h)
  file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.h)
  add_custom_command(
    OUTPUT ${object}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -Wall -Werror
            -I${PROJECT_SOURCE_DIR}/common -I/usr/include/${PORTMUX_MULTIARCH}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${object}
    DEPENDS ${source} ${headers} ${PROJECT_SOURCE_DIR}/common/portmux_shared.h
    COMMENT "Compiling BPF object ${stem}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skeleton}
    COMMAND ${BPFTOOL} gen skeleton ${object} name ${skeleton_name} > ${skeleton}
    DEPENDS ${object}
    COMMENT "Generating libbpf skeleton ${skeleton_name}.skel.h"
    VERBATIM)
  add_custom_target(${target}_skeleton DEPENDS ${skeleton})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_skeleton)
  target_include_directories(${target} INTERFACE ${CMAKE_CURRENT_BINARY_DIR}
                                                 ${PROJECT_SOURCE_DIR}/common)
  target_link_libraries(${target} INTERFACE PkgConfig::LIBBPF)
endfunction()
