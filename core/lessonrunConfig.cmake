# find_package(lessonrun) -> the lessonrun::lessonrun target
include(CMakeFindDependencyMacro)
find_dependency(PkgConfig)
pkg_check_modules(LUA REQUIRED IMPORTED_TARGET lua5.4)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv)
find_dependency(Threads)
include("${CMAKE_CURRENT_LIST_DIR}/lessonrunTargets.cmake")
