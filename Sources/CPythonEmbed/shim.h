/* Intentionally empty: see module.modulemap. Python.h is included only by
   Sources/CPyHost/cpyhost.c. */
