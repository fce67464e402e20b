/* The parser fuzz targets link src/vmm/config.c, which names the Hyper-V
 * feature parser in src/hv/hyperv.c; the SynIC's and the synthetic timers'
 * hooks into the LAPIC that file also names are never reached from a parser.  These stand in for
 * them so that the targets need not link the interrupt controllers. */
#include "hw/intc/lapic.h"

#include <stdlib.h>

void lapic_set_sint_ops(struct lapic *l, const struct lapic_sint_ops *ops, void *opaque)
{
	(void)l; (void)ops; (void)opaque;
	abort();
}

void lapic_sint_raise(struct lapic *l, uint8_t vector)
{
	(void)l; (void)vector;
	abort();
}

struct timer_service *lapic_timer_service(const struct lapic *l)
{
	(void)l;
	abort();
}

int lapic_eoi_vector(struct lapic *l, uint8_t vector)
{
	(void)l; (void)vector;
	abort();
}
