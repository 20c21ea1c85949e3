#!/bin/sh
# Wrapper for `meson test --wrapper scripts/valgrind-test.sh`: runs each test program under
# valgrind (memcheck, leaks included). A test that is a script (the network-namespace tests)
# runs unwrapped, with UVGENA_TEST_WRAPPER telling it to put valgrind in front of the uvgena
# program it starts, so that valgrind judges our code and not the shell's own leaks.
set -eu
vg="valgrind -q --error-exitcode=1 --leak-check=full"
case "$1" in
    *.sh | */bash | */sh | bash | sh)
        UVGENA_TEST_WRAPPER=$vg
        export UVGENA_TEST_WRAPPER
        exec "$@" ;;
esac
exec $vg "$@"
