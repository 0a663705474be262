/* eval.h — classifier metrics; their API is in include/qcare.h. */
#ifndef QC_EVAL_H
#define QC_EVAL_H

#include "qcare_care.h"

#endif
