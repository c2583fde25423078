/* utf8.h — what of a string is safe to show a terminal or a log. */
#ifndef BASTION_UTF8_H
#define BASTION_UTF8_H

#include <stddef.h>

/* Length (1..4) of the UTF-8 sequence at s, or 0 when it is not valid
 * UTF-8 (overlong, surrogate, past U+10FFFF, truncated) or encodes a C1
 * control character (U+0080..U+009F, which terminals obey like ESC).
 * ASCII counts 1 whatever it is: C0 controls are the caller's to judge.
 * Reads at most up to the first NUL. */
size_t	utf8_char_len(const unsigned char *s);

#endif
