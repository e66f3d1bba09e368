#ifndef CNODNS_H
#define CNODNS_H
/// Number of getaddrinfo calls the stub refused (for the config fuzz target).
unsigned long edge_fuzz_dns_lookups(void);
#endif
