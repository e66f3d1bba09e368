// Replaces libc's getaddrinfo in the FuzzConfig binary (an object file's
// definition wins over libc's, and over the sanitizer's weak interceptor):
// the config loader resolves endpoint host names, and a fuzzer must never send
// DNS queries or read /etc/hosts. Every lookup fails with EAI_FAIL.
#include <netdb.h>
#include <stddef.h>
#include "CNoDNS.h"

static unsigned long lookups;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    (void)node; (void)service; (void)hints;
    lookups++;
    if (res) *res = NULL;
    return EAI_FAIL;
}

void freeaddrinfo(struct addrinfo *res) { (void)res; }

unsigned long edge_fuzz_dns_lookups(void) { return lookups; }
