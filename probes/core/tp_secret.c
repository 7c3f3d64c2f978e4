/* tp_secret.c - see tp_secret.h. */
#include "tp_secret.h"

#include <stdio.h>
#include <sys/stat.h>

bool tp_secret_file_too_open(const char *path, char *why, size_t len) {
  struct stat st;
  if (stat(path, &st) != 0 || (st.st_mode & 077) == 0)
    return false;
  snprintf(why, len, "mode %04o: accessible by %s", (unsigned)(st.st_mode & 07777),
           (st.st_mode & 070) && (st.st_mode & 07) ? "group and others"
           : (st.st_mode & 070)                    ? "group"
                                                   : "others");
  return true;
}
