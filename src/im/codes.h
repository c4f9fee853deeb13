/* codes.h — the error codes of the WebSocket protocol and the HTTP API
 * (SPEC §2), with their English messages. */
#ifndef IMGATE_CODES_H
#define IMGATE_CODES_H

enum im_code {
    IM_OK = 200,
    IM_NOT_LOGGED_IN = 1000,
    IM_PARAM_ILLEGAL = 1001,
    IM_USER_ID_ILLEGAL = 1002,
    IM_UNAUTHORIZED = 1003,
    IM_SERVER_ERROR = 1004,
    IM_NOT_DATA = 1005,
    IM_MODEL_ADD_ERROR = 1006,
    IM_MODEL_DELETE_ERROR = 1007,
    IM_MODEL_STORE_ERROR = 1008,
    IM_OPERATION_FAILURE = 1009,
    IM_ROUTING_NOT_EXIST = 1010,
};

static inline const char *im_code_msg(int code)
{
    switch (code) {
    case IM_OK: return "Success";
    case IM_NOT_LOGGED_IN: return "Not logged in";
    case IM_PARAM_ILLEGAL: return "Illegal parameter";
    case IM_USER_ID_ILLEGAL: return "Illegal user ID";
    case IM_UNAUTHORIZED: return "Unauthorized";
    case IM_SERVER_ERROR: return "Server error";
    case IM_NOT_DATA: return "No data";
    case IM_MODEL_ADD_ERROR: return "Add failed";
    case IM_MODEL_DELETE_ERROR: return "Delete failed";
    case IM_MODEL_STORE_ERROR: return "Store failed";
    case IM_OPERATION_FAILURE: return "Operation failed";
    case IM_ROUTING_NOT_EXIST: return "Route does not exist";
    default: return "Unknown error";
    }
}

#endif
