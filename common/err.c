/* The error table behind include/kedge/err.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kedge/err.h"

const char *kedge_errname(int err)
{
    switch (err) {
#define XX(name, code, text)                                                                       \
    case code:                                                                                     \
        return "KEDGE_E" #name;
        KEDGE_ERR_MAP(XX)
#undef XX
    case 0:
        return "OK";
    case -ENOMEM:
        return "ENOMEM";
    case -ENOENT:
        return "ENOENT";
    case -EINVAL:
        return "EINVAL";
    case -EIO:
        return "EIO";
    case -EEXIST:
        return "EEXIST";
    case -ERANGE:
        return "ERANGE";
    case -EAGAIN:
        return "EAGAIN";
    case -EACCES:
        return "EACCES";
    case -ENOSPC:
        return "ENOSPC";
    case -EPERM:
        return "EPERM";
    default:
        return "EUNKNOWN";
    }
}

const char *kedge_strerror(int err)
{
    switch (err) {
#define XX(name, code, text)                                                                       \
    case code:                                                                                     \
        return text;
        KEDGE_ERR_MAP(XX)
#undef XX
    case 0:
        return "success";
    default:
        return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
    }
}
