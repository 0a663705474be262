/* care.h — the care pipeline; its API is in include/qcare.h. */
#ifndef QC_CARE_H
#define QC_CARE_H

#include "qcare_care.h"

#endif
