// libxcrypt (Debian libcrypt-dev): crypt_rn for htpasswd -B ($2y$), sha512crypt ($6$), yescrypt ($y$).
#include <crypt.h>
