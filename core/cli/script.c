/* The script a command line names: where it is (as given, then NAME.lua,
 * then among the lessons).  The file is
 * then read once, by luaL_loadfilex, as lua5.4 reads it: a FIFO,
 * /dev/stdin or <(...) can be read only once, and /dev/zero must fail at
 * its first bad token, not fill the memory. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "embed/embed.h"
#include "script.h"

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* something to load: there, and not a folder */
static int loadable(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* Levenshtein distance, capped: names are short */
static size_t distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 64 || m > 64) return 99;
  size_t row[65];
  for (size_t j = 0; j <= m; j++) row[j] = j;
  for (size_t i = 1; i <= n; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= m; j++) {
      size_t up = row[j];
      size_t best = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[m];
}

typedef struct {
  char names[6][72];
  int n;
} near_names;

static int printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
  return 1;
}

/* .lua files in DIR within two edits of NAME (with or without .lua), or
 * that NAME begins; never NAME itself (it was not found). */
static void near_in(const char *dir, const char *name, near_names *out) {
  DIR *d = opendir(dir);
  if (!d) return;
  char want[72];
  if (strlen(name) >= sizeof want) { closedir(d); return; }
  snprintf(want, sizeof want, "%s", name);
  if (has_suffix(want, ".lua")) want[strlen(want) - 4] = '\0';
  struct dirent *e;
  while ((e = readdir(d)) && out->n < 6) {
    size_t len = strlen(e->d_name);
    if (!has_suffix(e->d_name, ".lua") || len >= 72 || !printable(e->d_name)) continue;
    if (strcmp(e->d_name, name) == 0) continue;
    char base[72];
    snprintf(base, sizeof base, "%s", e->d_name);
    base[len - 4] = '\0';
    if (strcmp(base, want) == 0 && strcmp(name, want) == 0) continue;  /* NAME itself, a dangling link */
    size_t limit = strlen(want) <= 3 ? 1 : 2;
    int near = distance(want, base) <= limit || distance(name, e->d_name) <= limit ||
               (strlen(want) >= 3 && strncasecmp(want, base, strlen(want)) == 0);
    if (!near) continue;
    char path[PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (!loadable(path)) continue;
    int dup = 0;
    for (int k = 0; k < out->n; k++) dup |= strcmp(out->names[k], e->d_name) == 0;
    if (!dup) snprintf(out->names[out->n++], sizeof out->names[0], "%s", e->d_name);
  }
  closedir(d);
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

const char *lr__script_find(const char *name, const char *lessons, char *buf, size_t n, char *err,
                            size_t errlen) {
  /* a path (or "") is taken as it is, as lua5.4 takes it: its own errors */
  if (!name[0] || strchr(name, '/') || !lessons || !lessons[0] || loadable(name)) return name;
  int lua = has_suffix(name, ".lua");
  const char *forms[3] = {"%s.lua", "%s/%s", "%s/%s.lua"};
  for (int k = lua ? 1 : 0; k < 3; k++) {
    int len = k == 0 ? snprintf(buf, n, forms[k], name) : snprintf(buf, n, forms[k], lessons, name);
    if (len < 0 || (size_t)len >= n) continue;  /* too long to be there */
    if (loadable(buf)) return buf;
  }
  struct stat st;
  if (stat(name, &st) == 0) return name;  /* a folder: lua5.4's "cannot read x: Is a directory" */
  int at = lua ? snprintf(err, errlen, "cannot open %s: No such file or directory (looked here and in %s)", name,
                          lessons)
               : snprintf(err, errlen,
                          "cannot open %s: No such file or directory (looked for %s and %s.lua here and in %s)",
                          name, name, name, lessons);
  near_names near = {.n = 0};
  near_in(".", name, &near);
  near_in(lessons, name, &near);
  qsort(near.names, (size_t)near.n, sizeof near.names[0], by_name);
  for (int k = 0; k < near.n && k < 3 && at >= 0 && (size_t)at < errlen; k++)
    at += snprintf(err + at, errlen - (size_t)at, "%s'%s'", k ? " or " : "; did you mean ", near.names[k]);
  if (near.n && at >= 0 && (size_t)at < errlen) snprintf(err + at, errlen - (size_t)at, "?");
  return NULL;
}
