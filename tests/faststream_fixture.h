/*
 * faststream_fixture.h - a FastStream BinaryMessageFormatV1 envelope built
 * byte by byte from the format as written in the issue: headers
 * content-type=application/json and correlation_id=abc. The prelude is 18
 * bytes and the header block 2 + 53, so the header offset is 18 (0x12) and
 * the body, which the including test appends, starts at 73 (0x49).
 */
#ifndef TIMERS_FASTSTREAM_FIXTURE_H
#define TIMERS_FASTSTREAM_FIXTURE_H

#define FS_FIXTURE_BODY_OFFSET 73

#define FS_FIXTURE_HEAD                                                      \
  0x89, 'B', 'I', 'N', 0x0D, 0x0A, 0x1A, 0x0A, /* magic */                   \
      0x00, 0x01,                              /* version 1 */               \
      0x00, 0x00, 0x00, 0x12,                  /* header offset 18 */        \
      0x00, 0x00, 0x00, 0x49,                  /* body offset 73 */          \
      0x00, 0x02,                              /* 2 headers */               \
      0x00, 0x0C, 'c', 'o', 'n', 't', 'e', 'n', 't', '-', 't', 'y', 'p', 'e', \
      0x00, 0x10, 'a', 'p', 'p', 'l', 'i', 'c', 'a', 't', 'i', 'o', 'n', '/', \
      'j', 's', 'o', 'n', 0x00, 0x0E, 'c', 'o', 'r', 'r', 'e', 'l', 'a', 't', \
      'i', 'o', 'n', '_', 'i', 'd', 0x00, 0x03, 'a', 'b', 'c'

/* The same headers in the order Python's TimersBroker.publish writes them
 * (correlation_id first, then content-type): what the engine writes for a
 * FASTSTREAM timer scheduled with either order. */
#define FS_FIXTURE_HEAD_PUBLISH                                              \
  0x89, 'B', 'I', 'N', 0x0D, 0x0A, 0x1A, 0x0A, /* magic */                   \
      0x00, 0x01,                              /* version 1 */               \
      0x00, 0x00, 0x00, 0x12,                  /* header offset 18 */        \
      0x00, 0x00, 0x00, 0x49,                  /* body offset 73 */          \
      0x00, 0x02,                              /* 2 headers */               \
      0x00, 0x0E, 'c', 'o', 'r', 'r', 'e', 'l', 'a', 't', 'i', 'o', 'n', '_', \
      'i', 'd', 0x00, 0x03, 'a', 'b', 'c', 0x00, 0x0C, 'c', 'o', 'n', 't',   \
      'e', 'n', 't', '-', 't', 'y', 'p', 'e', 0x00, 0x10, 'a', 'p', 'p', 'l', \
      'i', 'c', 'a', 't', 'i', 'o', 'n', '/', 'j', 's', 'o', 'n'

#endif
