/* safety.h — the safety net; its API is in include/qcare.h. */
#ifndef QC_SAFETY_H
#define QC_SAFETY_H

#include "qcare_care.h"

#endif
