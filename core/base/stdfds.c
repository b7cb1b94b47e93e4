/* The standard descriptors being open at all (main and runtime creation). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/base.h"

/* A closed 0, 1 or 2 would be the next descriptor libuv opens, and libuv
 * asserts that it never closes one of those; /dev/null takes their place, as
 * a program started with `>&-` would see a stream that discards. */
void lr__std_fds_open(void) {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int nul = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (nul >= 0 && nul != fd) {  /* a lower one was closed too: it took that */
      dup2(nul, fd);
      close(nul);
    }
  }
}
