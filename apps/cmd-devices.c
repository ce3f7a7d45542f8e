/* nincl devices: every OpenCL platform and device, like `clinfo -l` with the facts that
 * matter for training. */
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "flags.h"

int cmd_devices(int argc, char **argv)
{
    int rc = flags_parse("devices", "List every OpenCL platform and device with the indices --platform and "
                                    "--device take.",
                         NULL, 0, argc, argv);
    if (rc >= 0)
        return rc;
    struct ncl_device_info *list = NULL;
    int n = 0;
    enum ncl_status s = ncl_device_list(&list, &n);
    if (s != NCL_OK) {
        fprintf(stderr, "nincl: %s\n", ncl_last_error());
        return exit_code_for(s);
    }
    int last_platform = -1;
    for (int i = 0; i < n; i++) {
        const struct ncl_device_info *d = &list[i];
        if (d->platform_index != last_platform) {
            printf("platform %d: %s\n", d->platform_index, d->platform_name);
            last_platform = d->platform_index;
        }
        printf("  device %d: %s\n", d->device_index, d->name);
        printf("    vendor %s, type %s, %u compute units\n", d->vendor, d->type, d->compute_units);
        printf("    global memory %.2f GiB, max allocation %.2f GiB, local memory %llu KiB\n",
               d->global_mem_bytes / 1073741824.0, d->max_alloc_bytes / 1073741824.0,
               (unsigned long long)(d->local_mem_bytes / 1024));
        printf("    %s, %s, driver %s\n", d->version, d->opencl_c_version, d->driver_version);
    }
    if (n == 0)
        printf("no OpenCL devices (install pocl-opencl-icd for the CPU)\n");
    free(list);
    return EXIT_OK;
}
