/* kedge-ctl's command arguments: the long options and operands a command takes after its name. */
#include <stdbool.h>
#include <string.h>

#include "ctl.h"

/* A long option with a value, "--name VALUE" or "--name=VALUE", at argv[*i].
 * Returns 1 with *value set (and *i moved past it), 0 when argv[*i] is not --name, or -1 when
 * the value is missing. */
int long_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0 || (argv[*i][n] != '=' && argv[*i][n] != '\0'))
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        complain("%s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

/* Arguments of the form OPERAND [FLAG], in any order: exactly one operand, the flag optional.
 * Returns 0, or -1 after printing the usage line. */
int one_operand(int argc, char **argv, const char *flag, const char **operand, bool *set,
                const char *usage)
{
    for (int k = 0; k < argc; k++) {
        if (!strcmp(argv[k], flag)) {
            *set = true;
        } else if (argv[k][0] == '-' || *operand) {
            *operand = NULL;
            break;
        } else {
            *operand = argv[k];
        }
    }
    if (!*operand) {
        complain("usage: %s\n", usage);
        return -1;
    }
    return 0;
}
