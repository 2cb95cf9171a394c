// json_floor: the floor under the core benchmark. It validates each payload of FILE (one a line) as
// strict JSON (RFC 8259 grammar, UTF-8, nesting up to 64), one byte at a time, by recursive
// descent, and does nothing else: no field is found, no value made, nothing written. Whatever reads
// a payload byte by byte costs at least this; Benchmarks/bench.py prints it beside the time a
// message may take at 10x python3.
//
//   cc -O2 -o json_floor Benchmarks/json_floor.c && ./json_floor FILE SECONDS ROUNDS
//
// Prints one JSON object: {"ns_per_message": best round, "valid": payloads found valid}.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  const unsigned char *p;
  const unsigned char *end;
} Cursor;

static int value(Cursor *c, int depth);

static void skip_space(Cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\t' || *c->p == '\r')) c->p++;
}

static int digits(Cursor *c) {
  const unsigned char *start = c->p;
  while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  return c->p > start;
}

// A UTF-8 sequence whose lead byte (>= 0x80) is at c->p: shortest form, no surrogates, <= U+10FFFF.
static int utf8(Cursor *c) {
  unsigned lead = *c->p;
  int extra;
  unsigned low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    extra = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    extra = 2;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    extra = 3;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (c->end - c->p <= extra) return 0;
  for (int i = 1; i <= extra; i++) {
    unsigned byte = c->p[i];
    if (byte < (i == 1 ? low : 0x80) || byte > (i == 1 ? high : 0xBF)) return 0;
  }
  c->p += extra + 1;
  return 1;
}

static int hex(unsigned byte) {
  return (byte >= '0' && byte <= '9') || ((byte | 0x20) >= 'a' && (byte | 0x20) <= 'f');
}

static int string(Cursor *c) {
  c->p++;
  while (c->p < c->end) {
    unsigned byte = *c->p;
    if (byte == '"') {
      c->p++;
      return 1;
    }
    if (byte < 0x20) return 0;
    if (byte >= 0x80) {
      if (!utf8(c)) return 0;
      continue;
    }
    if (byte == '\\') {
      if (c->end - c->p < 2) return 0;
      unsigned escaped = c->p[1];
      if (escaped == 'u') {
        if (c->end - c->p < 6) return 0;
        for (int i = 2; i < 6; i++)
          if (!hex(c->p[i])) return 0;
        c->p += 6;
        continue;
      }
      if (!strchr("\"\\/bfnrt", (int)escaped) || escaped == 0) return 0;
      c->p += 2;
      continue;
    }
    c->p++;
  }
  return 0;
}

static int number(Cursor *c) {
  if (*c->p == '-') c->p++;
  if (c->p >= c->end) return 0;
  if (*c->p == '0') {
    c->p++;
  } else if (!digits(c)) {
    return 0;
  }
  if (c->p < c->end && *c->p == '.') {
    c->p++;
    if (!digits(c)) return 0;
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    if (!digits(c)) return 0;
  }
  return 1;
}

static int word(Cursor *c, const char *text, long length) {
  if (c->end - c->p < length || memcmp(c->p, text, (size_t)length) != 0) return 0;
  c->p += length;
  return 1;
}

static int container(Cursor *c, int depth, unsigned close) {
  if (depth >= 64) return 0;
  c->p++;
  skip_space(c);
  if (c->p < c->end && *c->p == close) {
    c->p++;
    return 1;
  }
  for (;;) {
    if (close == '}') {
      skip_space(c);
      if (c->p >= c->end || *c->p != '"' || !string(c)) return 0;
      skip_space(c);
      if (c->p >= c->end || *c->p != ':') return 0;
      c->p++;
    }
    if (!value(c, depth + 1)) return 0;
    skip_space(c);
    if (c->p >= c->end) return 0;
    if (*c->p == ',') {
      c->p++;
      continue;
    }
    if (*c->p != close) return 0;
    c->p++;
    return 1;
  }
}

static int value(Cursor *c, int depth) {
  skip_space(c);
  if (c->p >= c->end) return 0;
  switch (*c->p) {
  case '{': return container(c, depth, '}');
  case '[': return container(c, depth, ']');
  case '"': return string(c);
  case 't': return word(c, "true", 4);
  case 'f': return word(c, "false", 5);
  case 'n': return word(c, "null", 4);
  default:
    if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) return number(c);
    return 0;
  }
}

static int document(const unsigned char *bytes, size_t length) {
  Cursor c = {bytes, bytes + length};
  if (!value(&c, 0)) return 0;
  skip_space(&c);
  return c.p == c.end;
}

// Keeps the validations from being optimised away.
static volatile long kept;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: json_floor FILE SECONDS ROUNDS\n");
    return 64;
  }
  FILE *file = fopen(argv[1], "rb");
  if (!file) {
    perror(argv[1]);
    return 74;
  }
  size_t capacity = 1 << 20, size = 0;
  unsigned char *text = malloc(capacity);
  size_t got;
  while (text && (got = fread(text + size, 1, capacity - size, file)) > 0) {
    size += got;
    if (size == capacity) text = realloc(text, capacity *= 2);
  }
  fclose(file);
  if (!text) return 71;
  size_t count = 0, *starts = malloc(sizeof(size_t) * (size + 1)), *lengths = malloc(sizeof(size_t) * (size + 1));
  for (size_t start = 0; start < size;) {
    unsigned char *newline = memchr(text + start, '\n', size - start);
    size_t stop = newline ? (size_t)(newline - text) : size;
    if (stop > start) {
      starts[count] = start;
      lengths[count++] = stop - start;
    }
    start = stop + 1;
  }
  double seconds = atof(argv[2]), best = 0;
  long valid = 0;
  for (size_t i = 0; i < count; i++) valid += document(text + starts[i], lengths[i]);
  for (int round = 0; round < atoi(argv[3]); round++) {
    double begin = now(), elapsed = 0;
    long messages = 0, sink = 0;
    while (elapsed < seconds) {
      for (size_t i = 0; i < count; i++) sink += document(text + starts[i], lengths[i]);
      messages += (long)count;
      elapsed = now() - begin;
    }
    double rate = (double)messages / elapsed;
    kept = sink;
    if (rate > best) best = rate;
  }
  printf("{\"ns_per_message\": %.1f, \"valid\": %ld}\n", best > 0 ? 1e9 / best : 0.0, valid);
  return 0;
}
