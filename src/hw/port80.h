/* POST code port 0x80: firmware and Linux (io_delay) write it; writes are
 * kept (visible at debug log level), reads return the last value. */
#ifndef VESSEL_HW_PORT80_H
#define VESSEL_HW_PORT80_H

struct bus;
struct port80;

struct port80 *port80_new(void);
void port80_free(struct port80 *p);
int port80_register(struct port80 *p, struct bus *pio);

#endif
