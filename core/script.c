/* The script a command line names: where it is (as given, then NAME.lua,
 * then among the lessons), read once (a FIFO, /dev/stdin or <(...) can be
 * read only once), and loaded as luaL_loadfile would load it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lr.h"
#include "script.h"

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* 0 and the text, 1 if there is no such file (or it is a folder: seen is
 * set), -1 with err set for any other failure. */
static int read_whole(const char *path, lr_script *s, int *seen_dir, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return 1;
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    *seen_dir = 1;
    return 1;
  }
  size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      snprintf(err, errlen, "cannot read %s: not enough memory", path);
      close(fd);
      return -1;
    }
    if (n == cap) {
      char *bigger = realloc(buf, cap * 2);
      if (!bigger) free(buf);
      buf = bigger;
      cap *= 2;
      continue;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
      free(buf);
      close(fd);
      return -1;
    }
    n += (size_t)r;
  }
  close(fd);
  s->text = buf;
  s->len = n;
  snprintf(s->path, sizeof s->path, "%s", path);
  return 0;
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
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[m];
}

/* Appends "; did you mean 'x.lua'?" for .lua files in DIR near NAME. */
static void suggest_from(const char *dir, const char *name, char *out, size_t outlen, int *found) {
  DIR *d = opendir(dir);
  if (!d) return;
  char want[256];
  snprintf(want, sizeof want, "%s", name);
  if (has_suffix(want, ".lua")) want[strlen(want) - 4] = '\0';
  struct dirent *e;
  while ((e = readdir(d)) && *found < 3) {
    if (!has_suffix(e->d_name, ".lua") || strlen(e->d_name) >= sizeof want) continue;
    char base[256];
    snprintf(base, sizeof base, "%s", e->d_name);
    base[strlen(base) - 4] = '\0';
    size_t limit = strlen(want) <= 3 ? 1 : 2;
    if (distance(want, base) > limit && strncmp(want, base, strlen(want) > 2 ? strlen(want) : 3) != 0)
      continue;
    size_t used = strlen(out);
    snprintf(out + used, outlen - used, "%s'%s'", *found ? " or " : "; did you mean ", e->d_name);
    (*found)++;
  }
  closedir(d);
}

int lr__script_read(const char *name, const char *lessons, lr_script *s, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  int seen_dir = 0;
  /* a path (or "") is taken as it is, as lua5.4 takes it */
  int lookup = name[0] && !strchr(name, '/') && lessons && lessons[0];
  char cand[4][PATH_MAX];
  int n = 0;
  snprintf(cand[n++], PATH_MAX, "%s", name);
  if (lookup) {
    if (!has_suffix(name, ".lua")) snprintf(cand[n++], PATH_MAX, "%s.lua", name);
    snprintf(cand[n++], PATH_MAX, "%s/%s", lessons, name);
    if (!has_suffix(name, ".lua")) snprintf(cand[n++], PATH_MAX, "%s/%s.lua", lessons, name);
  }
  for (int k = 0; k < n; k++) {
    int r = read_whole(cand[k], s, &seen_dir, err, errlen);
    if (r <= 0) return r;
  }
  if (seen_dir) {
    snprintf(err, errlen, "cannot read %s: Is a directory", name);
    return -1;
  }
  if (!lookup) {
    snprintf(err, errlen, "cannot open %s: No such file or directory", name);
    return -1;
  }
  if (has_suffix(name, ".lua"))
    snprintf(err, errlen, "cannot open %s: No such file or directory (looked here and in %s)", name, lessons);
  else
    snprintf(err, errlen, "cannot open %s: No such file or directory (looked for %s and %s.lua here and in %s)",
             name, name, name, lessons);
  int found = 0;
  suggest_from(".", name, err, errlen, &found);
  suggest_from(lessons, name, err, errlen, &found);
  if (found) snprintf(err + strlen(err), errlen - strlen(err), "?");
  return -1;
}

int lr__script_load(lua_State *L, const lr_script *s) {
  const char *p = s->text, *end = s->text + s->len;
  if (end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;  /* as luaL_loadfile: a BOM */
  if (p < end && *p == '#') {  /* a "#!" line; its newline stays, for the line numbers */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl : end;
    if (p + 1 < end && p[1] == LUA_SIGNATURE[0]) p++;  /* a binary chunk after it */
  }
  lua_pushfstring(L, "@%s", s->path);
  int st = luaL_loadbufferx(L, p, (size_t)(end - p), lua_tostring(L, -1), NULL);
  lua_remove(L, -2);
  return st;
}

int lr__script_mentions(const lr_script *s, const char *word) {
  size_t k = strlen(word);
  for (const char *c = s->text; s->len >= k && (c = memchr(c, word[0], s->len - k + 1 - (size_t)(c - s->text)));
       c++)
    if (memcmp(c, word, k) == 0) return 1;
  return 0;
}

void lr__script_free(lr_script *s) {
  free(s->text);
  s->text = NULL;
}
