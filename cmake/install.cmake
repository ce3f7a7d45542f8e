# What `cmake --install` and `cpack -G DEB` put on a machine: libnincl.so (with its soname),
# libnincl.a, include/nincl.h, the nincl command, nincl.pc for pkg-config, and a CMake package
# (find_package(nincl) -> nincl::nincl, the shared library; nincl::nincl_static where the
# static library's own dependencies are found). The build tree is a package too:
# -Dnincl_DIR=<build folder>.
set(NCL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/nincl)
install(TARGETS nincl EXPORT ninclTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS nincl_static EXPORT ninclStaticTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS nincl-app RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES include/nincl.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES examples/train-nin-small.c examples/CMakeLists.txt DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# nincl.pc finds its prefix from where it lies, so an install tree can be moved.
set(NCL_PC_MPI "")
if(MPI_C_FOUND)
  set(NCL_PC_MPI " -lmpi")
endif()
file(RELATIVE_PATH NCL_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(cmake/nincl.pc.in ${CMAKE_BINARY_DIR}/nincl.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/nincl.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

include(CMakePackageConfigHelpers)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/ninclConfigVersion.cmake COMPATIBILITY SameMinorVersion)
configure_file(cmake/ninclConfig.cmake.in ${CMAKE_BINARY_DIR}/ninclConfig.cmake @ONLY)
install(EXPORT ninclTargets NAMESPACE nincl:: DESTINATION ${NCL_CMAKE_DIR})
install(EXPORT ninclStaticTargets NAMESPACE nincl:: DESTINATION ${NCL_CMAKE_DIR})
install(FILES ${CMAKE_BINARY_DIR}/ninclConfig.cmake ${CMAKE_BINARY_DIR}/ninclConfigVersion.cmake
        DESTINATION ${NCL_CMAKE_DIR})
export(EXPORT ninclTargets NAMESPACE nincl:: FILE ${CMAKE_BINARY_DIR}/ninclTargets.cmake)
export(EXPORT ninclStaticTargets NAMESPACE nincl:: FILE ${CMAKE_BINARY_DIR}/ninclStaticTargets.cmake)

# A Debian package: cpack -G DEB in a build configured with -DCMAKE_INSTALL_PREFIX=/usr
# (scripts/package-deb.sh). dpkg-shlibdeps (dpkg-dev) fills Depends with the packages of the
# shared libraries the binaries link; an OpenCL implementation and the data set are
# recommended (PoCL gives every machine a CPU device).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME nincl)
set(CPACK_PACKAGE_VENDOR "nincl")
set(CPACK_PACKAGE_CONTACT "nincl developers <nincl@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "train CNNs with OpenCL on any OpenCL device (library and command)")
set(CPACK_PACKAGE_DESCRIPTION
    "nincl builds CNN layer graphs and trains them with OpenCL kernels on GPUs and CPUs: the nincl command, the shared and static library, its header, pkg-config file and CMake package.")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "pocl-opencl-icd | opencl-icd, dataset-fashion-mnist")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
include(CPack)
