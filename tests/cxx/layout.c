/* tests/cxx/layout.c - prints the size and alignment of every public struct of strand.h and
 * the offset of each field, as compiled by the C compiler (see layout.inc). */
#include <stdalign.h>
#include <stdio.h>

#include "strand.h"

int main(void)
{
#define S(t) printf("%s size %zu align %zu\n", #t, sizeof(t), alignof(t));
#define F(t, f) printf("%s.%s offset %zu size %zu\n", #t, #f, offsetof(t, f), sizeof(((t *)0)->f));
#include "layout.inc"
#undef S
#undef F
    return 0;
}
