/* vessel device plug-in ABI (placeholder, versioned when it lands). */
#ifndef VESSEL_PLUGIN_H
#define VESSEL_PLUGIN_H
#define VESSEL_PLUGIN_ABI_VERSION 0
#endif
