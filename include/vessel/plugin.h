/* vessel device plug-in ABI (docs/plugins.md).
 *
 * A plug-in is a shared object in a plug-in directory that exports one
 * constant descriptor, `const struct vessel_plugin vessel_plugin_descriptor`
 * (use VESSEL_PLUGIN_EXPORT).  The descriptor says everything about the
 * devices it provides -- names, parameters with types and defaults, the
 * I/O ports, MMIO ranges, IRQ lines and PCI functions each needs -- so
 * `vessel plugin list` and `vessel plugin info` read it without creating a
 * device.
 *
 * Stability rules:
 * - VESSEL_PLUGIN_ABI_VERSION changes when a layout or a meaning changes;
 *   vessel refuses a plug-in built for another version, with a message.
 * - Structures that may grow start with a `size` field (the sizeof the
 *   plug-in or the host was built with).  New fields are only appended;
 *   each side reads a field only when the other's size covers it.
 * - Only fixed-width types, pointers and enums with fixed values cross
 *   the boundary.  The header needs nothing but the C library.
 *
 * Threading: every device callback runs with the VM's device lock held
 * (one at a time for the whole VM), from a vCPU thread or the control
 * thread.  A device with threads of its own must lock its own state. */
#ifndef VESSEL_PLUGIN_H
#define VESSEL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: resources gained `pci` (the PCI function a VESSEL_RES_PCI resource
 * describes), device types bar_read/bar_write, the host pci_irq. */
#define VESSEL_PLUGIN_ABI_VERSION 2
#define VESSEL_PLUGIN_MAGIC 0x474c5056u /* "VPLG" little-endian */
#define VESSEL_PLUGIN_SYMBOL "vessel_plugin_descriptor"

/* ---- what a device needs: parameters and resources ---- */

enum vessel_param_type {
	VESSEL_PARAM_BOOL = 1,
	VESSEL_PARAM_INT = 2,     /* int64, bounded by min/max */
	VESSEL_PARAM_STRING = 3,
};

struct vessel_param_spec {
	const char *name;
	enum vessel_param_type type;
	const char *description;
	/* Default as text ("true", "1280", "hello"); NULL: the parameter
	 * must be given. */
	const char *default_value;
	int64_t min, max;         /* VESSEL_PARAM_INT only */
};

union vessel_param_value {
	int64_t i;                /* VESSEL_PARAM_INT; BOOL as 0/1 */
	const char *s;            /* VESSEL_PARAM_STRING, valid until destroy */
};

enum vessel_resource_kind {
	VESSEL_RES_PIO = 1,       /* a range of I/O ports */
	VESSEL_RES_MMIO = 2,      /* a guest-physical MMIO range (outside RAM) */
	VESSEL_RES_IRQ = 3,       /* an interrupt line (GSI) */
	VESSEL_RES_PCI = 4,       /* a PCI function on bus 0, placed by vessel */
};

/* ---- a PCI function (VESSEL_RES_PCI) ---- */

/* BAR kinds (PCI Local Bus 3.0, 6.2.5.1). */
#define VESSEL_PCI_BAR_MEM      0x0u   /* 32-bit memory space */
#define VESSEL_PCI_BAR_IO       0x1u   /* I/O space */
#define VESSEL_PCI_BAR_PREFETCH 0x2u   /* memory, prefetchable */

/* Limits vessel checks when it loads a plug-in. */
#define VESSEL_PCI_MAX_BARS     6
#define VESSEL_PCI_BAR_MEM_MIN  16u
#define VESSEL_PCI_MEM_MAX      (16u << 20)   /* memory BARs of one function, in all */
#define VESSEL_PCI_BAR_IO_MIN   4u
#define VESSEL_PCI_IO_MAX       256u          /* I/O BARs of one function, in all */
#define VESSEL_PCI_MAX_MSI      32u

struct vessel_pci_bar {
	/* Bytes: a power of two, memory from 16 B, I/O from 4 B; 0: this
	 * BAR is not implemented (reads as 0, as the spec says). */
	uint64_t size;
	uint32_t flags;           /* VESSEL_PCI_BAR_* */
};

/* The configuration space vessel builds for the function: the header's
 * identity from these fields, BARs sized from `bars` (vessel chooses
 * where they go), a capability list with an MSI capability when
 * msi_vectors is not 0, and the INTx pin. */
struct vessel_pci_function {
	uint16_t vendor_id;       /* not 0x0000 nor 0xffff */
	uint16_t device_id;       /* not 0xffff */
	uint16_t subsystem_vendor_id, subsystem_id;
	uint32_t class_code;      /* 0xCCSSPP: base class, subclass, programming interface */
	uint8_t revision;
	uint8_t interrupt_pin;    /* 0: none, 1-4: INTA-INTD */
	uint8_t msi_vectors;      /* 0: no MSI; 1, 2, 4, 8, 16 or 32 */
	uint8_t reserved;
	const struct vessel_pci_bar *bars;   /* BAR i is bars[i] */
	uint32_t n_bars;          /* at most VESSEL_PCI_MAX_BARS */
};

struct vessel_resource_spec {
	enum vessel_resource_kind kind;
	const char *name;         /* "regs", "irq"... */
	/* Where it goes: `base` (port, address, line, or PCI slot 1-31 with 0
	 * for the first free one) unless the INT parameter named `base_param`
	 * is set. */
	uint64_t base;
	const char *base_param;   /* may be NULL */
	uint64_t len;             /* bytes of PIO/MMIO; 1 for IRQ and PCI */
	const struct vessel_pci_function *pci;   /* VESSEL_RES_PCI only */
};

/* ---- services the host gives a device ---- */

enum vessel_log_level {
	VESSEL_LOG_ERROR = 0,
	VESSEL_LOG_WARN = 1,
	VESSEL_LOG_INFO = 2,
	VESSEL_LOG_DEBUG = 3,
};

struct vessel_host {
	uint32_t size;            /* sizeof(struct vessel_host) of the host */
	uint32_t abi_version;
	void *ctx;                /* pass back to every service */
	void (*log)(void *ctx, enum vessel_log_level level, const char *message);
	/* Drives IRQ resource `res` (index in the device's resources) to
	 * level 0 or 1; an edge-triggered line takes a 1 then a 0.  Returns
	 * 0 or a negative errno. */
	int (*irq_set)(void *ctx, unsigned res, int level);
	/* Bounds-checked guest RAM access: -EFAULT (negative) if any byte of
	 * [gpa, gpa+len) is not RAM; nothing is copied then.  A device with
	 * a PCI function is a bus master only while the guest lets it:
	 * -EPERM while the function's Bus Master Enable bit is clear. */
	int (*mem_read)(void *ctx, uint64_t gpa, void *buf, size_t len);
	int (*mem_write)(void *ctx, uint64_t gpa, const void *buf, size_t len);
	/* Where resource `res` was placed (port, address, line, PCI slot). */
	uint64_t (*resource_base)(void *ctx, unsigned res);
	/* Interrupt `vector` of PCI resource `res`.  With MSI enabled by the
	 * guest, level 1 sends the vector's message (held pending while the
	 * guest masks MSI) and level 0 does nothing; otherwise the function's
	 * INTx pin is asserted while any vector is at level 1 (and the
	 * guest's Interrupt Disable bit is clear).  Returns 0, or -EINVAL for
	 * a vector past msi_vectors (or past 0 without MSI). */
	int (*pci_irq)(void *ctx, unsigned res, unsigned vector, int level);
};

/* ---- a device type ---- */

struct vessel_device_type {
	uint32_t size;            /* sizeof(struct vessel_device_type) */
	const char *name;         /* unique across plug-ins: [a-z0-9-]+ */
	const char *description;
	const struct vessel_param_spec *params;
	uint32_t n_params;
	const struct vessel_resource_spec *resources;
	uint32_t n_resources;

	/* Creates one device.  params[i] holds the value of params spec i
	 * (given or default, already type- and range-checked).  host stays
	 * valid until destroy.  Returns 0 and sets *dev, or a negative errno
	 * (the host then reports a generic failure naming the device). */
	int (*create)(const struct vessel_host *host, const union vessel_param_value *params, void **dev);
	void (*destroy)(void *dev);
	/* Guest access to PIO/MMIO resource `res`; off is relative to its
	 * base; size is 1, 2, 4 or 8.  May be NULL (reads as all ones). */
	uint64_t (*read)(void *dev, uint32_t res, uint64_t off, uint32_t size);
	void (*write)(void *dev, uint32_t res, uint64_t off, uint32_t size, uint64_t value);
	/* Machine reset (power-up again).  May be NULL. */
	void (*reset)(void *dev);
	/* Device state for snapshots: save writes at most cap bytes and
	 * returns the count, or -ENOSPC (negative) when cap is too small
	 * (the host retries with more); load gets exactly what save wrote
	 * and returns 0 or a negative errno (refused).  Both NULL: the
	 * device has no state beyond its parameters. */
	int64_t (*save)(void *dev, void *buf, size_t cap);
	int (*load)(void *dev, const void *buf, size_t len);
	/* Guest access to BAR `bar` of PCI resource `res` where the guest
	 * placed it; off is relative to the BAR; size 1, 2, 4 or 8.  May be
	 * NULL (reads as all ones). */
	uint64_t (*bar_read)(void *dev, uint32_t res, uint32_t bar, uint64_t off, uint32_t size);
	void (*bar_write)(void *dev, uint32_t res, uint32_t bar, uint64_t off, uint32_t size, uint64_t value);
};

/* ---- the descriptor a plug-in exports ---- */

struct vessel_plugin {
	uint32_t magic;           /* VESSEL_PLUGIN_MAGIC */
	uint32_t abi_version;     /* VESSEL_PLUGIN_ABI_VERSION it was built with */
	uint32_t size;            /* sizeof(struct vessel_plugin) */
	const char *name;
	const char *version;
	const char *description;
	const struct vessel_device_type *const *devices;
	uint32_t n_devices;
};

#if defined(__GNUC__)
#define VESSEL_PLUGIN_VISIBLE __attribute__((visibility("default"), used))
#else
#define VESSEL_PLUGIN_VISIBLE
#endif

/* VESSEL_PLUGIN_EXPORT(name, version, description, devices...) defines
 * the descriptor. */
#define VESSEL_PLUGIN_EXPORT(NAME, VERSION, DESCRIPTION, ...)                                   \
	static const struct vessel_device_type *const vessel_plugin_devices_[] = { __VA_ARGS__ }; \
	VESSEL_PLUGIN_VISIBLE const struct vessel_plugin vessel_plugin_descriptor = {             \
		VESSEL_PLUGIN_MAGIC, VESSEL_PLUGIN_ABI_VERSION, sizeof(struct vessel_plugin),     \
		NAME, VERSION, DESCRIPTION, vessel_plugin_devices_,                               \
		sizeof(vessel_plugin_devices_) / sizeof(vessel_plugin_devices_[0]) }

#ifdef __cplusplus
}
#endif

#endif
