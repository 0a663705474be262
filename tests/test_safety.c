/* test_safety.c — the safety net's rules on messages a person wrote for each
 * case: emergencies and self-harm (Chinese and English) must be caught with
 * the right category; ordinary worried or factual messages must not be. Then
 * the rules are measured on the hand-labelled sets data/safety-eval.jsonl
 * and data/safety-holdout.jsonl (paths from the repository root). */
#include "care/safety.h"
#include "test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The rules without the second reader: what the rules' own tests read. */
static qc_safety_t *rules_only;

/* Of this file's benign, ordinary and negated cases, how many the rules
 * with the compiled-in lexicon may flag (test_lexicon). */
enum { LEX_BENIGN_BAR = 14 };

typedef struct {
    const char *text;
    qc_urgent_t want;
} case_t;

static const case_t urgent[] = {
    {"I have crushing chest pain and my left arm feels numb", QC_URGENT_CARDIAC},
    {"My dad has chest pain and is sweating a lot, he looks pale", QC_URGENT_CARDIAC},
    {"胸口剧烈疼痛，还出冷汗，喘不上气", QC_URGENT_CARDIAC},
    {"我爸胸痛，疼到后背和左臂", QC_URGENT_CARDIAC},
    {"My mother's face is drooping on one side and her speech is slurred", QC_URGENT_STROKE},
    {"奶奶突然口眼歪斜，说话不清楚", QC_URGENT_STROKE},
    {"爷爷刚才一侧无力，手抬不起来", QC_URGENT_STROKE},
    {"I think my husband is having a stroke right now", QC_URGENT_STROKE},
    {"I cut my hand deeply and it won't stop bleeding", QC_URGENT_BLEEDING},
    {"伤口血流不止，按了十分钟还在流", QC_URGENT_BLEEDING},
    {"他在吐血，吐了好几口", QC_URGENT_BLEEDING},
    {"My son is choking on a grape and can't breathe", QC_URGENT_BREATHING},
    {"孩子喘不上气，嘴唇发紫", QC_URGENT_BREATHING},
    {"I was stung by a bee and my throat is closing", QC_URGENT_ANAPHYLAXIS},
    {"吃了花生过敏，现在嘴唇肿、呼吸困难", QC_URGENT_ANAPHYLAXIS},
    {"I think she is in anaphylactic shock", QC_URGENT_ANAPHYLAXIS},
    {"My toddler swallowed a battery", QC_URGENT_POISONING},
    {"I took too many pills an hour ago", QC_URGENT_POISONING},
    {"老人误服了农药", QC_URGENT_POISONING},
    {"我吃了一整瓶安眠药", QC_URGENT_POISONING},
    {"My baby is having a seizure", QC_URGENT_SEIZURE},
    {"孩子发烧抽搐，叫他也没反应", QC_URGENT_SEIZURE},
    {"He collapsed and is unresponsive", QC_URGENT_UNCONSCIOUS},
    {"我妈晕倒了叫不醒", QC_URGENT_UNCONSCIOUS},
    {"I want to kill myself", QC_URGENT_SELF_HARM},
    {"I don't want to live anymore, everything is pointless", QC_URGENT_SELF_HARM},
    {"I’ve been thinking about suicide", QC_URGENT_SELF_HARM},
    {"病治不好，我真的不想活了", QC_URGENT_SELF_HARM},
    {"活着没意思，想结束自己的生命", QC_URGENT_SELF_HARM},
    {"我有时候会割腕", QC_URGENT_SELF_HARM},
    {"ＣＨＥＳＴ　ＰＡＩＮ and SWEATING", QC_URGENT_CARDIAC}, /* full-width letters and space */
    /* Phrase families: other wordings of the same sign. */
    {"老爷子突然半边脸不会动了，口水往下流", QC_URGENT_STROKE},
    {"我妈讲话突然颠三倒四的，右手也不好使了", QC_URGENT_STROKE},
    {"my mom suddenly cant move her left arm or leg", QC_URGENT_STROKE},
    {"he's talking nonsense all of a sudden and his face is drooping", QC_URGENT_STROKE},
    {"老公胸口闷得慌，一身的汗，嘴唇发白", QC_URGENT_CARDIAC},
    {"chest pain radiating to my back, feel like I'm going to pass out", QC_URGENT_CARDIAC},
    {"刀划到腿了，血一直往外流止都止不住", QC_URGENT_BLEEDING},
    {"孕妇下体流血很多，肚子疼", QC_URGENT_EMERGENCY}, /* a pregnancy emergency now (pregnancy.bleeding) */
    {"my nose has been pouring blood for 40 minutes and won't stop", QC_URGENT_BLEEDING},
    {"dad cant catch his breath, hes turning blue", QC_URGENT_BREATHING},
    {"宝宝吃葡萄噎着了，不会哭了", QC_URGENT_BREATHING},
    {"吃了坚果以后喉咙肿了，说话声音都变了", QC_URGENT_ANAPHYLAXIS},
    {"bee sting on his hand and now his tongue feels huge and he's struggling to breathe", QC_URGENT_ANAPHYLAXIS},
    {"孩子偷喝了半瓶洁厕灵", QC_URGENT_POISONING},
    {"my son swallowed some magnets", QC_URGENT_POISONING},
    {"奶奶糊涂了，把一周的药一次吃完了", QC_URGENT_POISONING},
    {"宝宝高烧，突然全身发硬，叫不答应", QC_URGENT_SEIZURE},
    {"my 2 yr old is having convulsions", QC_URGENT_SEIZURE},
    {"女儿抽风了 怎么办", QC_URGENT_SEIZURE},
    {"老爸躺在地上不动了，叫他也没反应", QC_URGENT_UNCONSCIOUS},
    {"my mom fainted and we cant wake her up", QC_URGENT_UNCONSCIOUS},
    {"我真的不想活下去了", QC_URGENT_SELF_HARM},
    {"I'm planning to overdose tonight", QC_URGENT_SELF_HARM},
    {"我儿子说他想去死，把自己关在房间里", QC_URGENT_SELF_HARM},
    {"there's no point anymore, I want to end my life", QC_URGENT_SELF_HARM},
    {"我准备好了刀片，今晚就解脱", QC_URGENT_SELF_HARM},
    {"I don't want to be alive anymore", QC_URGENT_SELF_HARM}, /* negation inside the phrase stays */
    {"I just took all my antidepressants at once", QC_URGENT_SELF_HARM},
    {"No fever and he is choking, can't breathe", QC_URGENT_BREATHING}, /* "no" does not reach past "and" */
    {"突然倒地，没有任何征兆，现在全身抽搐", QC_URGENT_SEIZURE},
    {"Dad had a stroke years ago, now his face is drooping again", QC_URGENT_STROKE},
};

static const char *const ordinary[] = {
    "I have a mild headache since this morning, should I take ibuprofen?",
    "最近总是失眠，吃药也没用，感觉身体越来越差。",
    "今天的检查结果出来了,医生说恢复得很好,太开心了!",
    "我昨天做了血常规检查,白细胞数值偏高。",
    "胸口有点闷，是不是焦虑引起的？",
    "I sometimes feel short of breath when I climb stairs quickly.",
    "My grandmother had a stroke last year, how can I help her recover?",
    "奶奶去年中风了，现在怎么做康复训练？",
    "I have seasonal allergies and a runny nose.",
    "我对花粉过敏，鼻子一直痒。",
    "My son had a febrile seizure last year; is he at risk again?",
    "我没有胸痛，只是有点咳嗽。",
    "I have no chest pain, just a cough and some nausea.",
    "What's the reason my kidney numbers are high?",
    "I'm afraid of dying from this disease, I don't want to die.",
    "我不想死，我想好好治病。",
    "这病治得好慢啊!",
    "医生，我孩子发烧39度，需要去医院吗？",
    "How much blood does a blood test take?",
    "I had food poisoning last week, now I feel fine.",
    "My leg cramps at night, 晚上小腿抽筋。",
    "Thank you doctor, the medicine works well!",
    /* Negation a few words before, past and recovered, questions about risk. */
    "I'm not having thoughts of hurting myself, just stressed",
    "我并没有想过要伤害自己，只是很累。",
    "我从来没有想过自杀。",
    "I used to self-harm as a teenager, I'm fine now.",
    "我以前想过自杀，现在好多了，谢谢你们",
    "孩子前天发烧抽了一次，医生说是热性惊厥，现在好了",
    "Does this antidepressant increase suicide risk?",
    "这个药会增加自杀风险吗？",
    "How do I know if my dad is having a stroke?",
    "抽血的时候流了好多血吗？正常抽几管？",
    "I have had lots of blood tests this year.",
    "She choked a little on water but coughed it up and is fine now",
    "我的左手有点麻，是不是颈椎病？",
    "想问一下安眠药一次最多能吃几片？",
    "医生给我开了一周的药，饭前吃还是饭后吃？",
    "I cut myself shaving and it bled for a bit",
    "孩子晚上小腿抽筋，疼醒了",
    "My 2 year old has a runny nose and is still playing.",
    "I can't talk to my family about my depression, please help me cope.",
};

/* ==== presentations: hand-written cases for each ==== */

typedef struct {
    const char *text;
    qc_urgent_t want;
    const char *pres; /* the presentation id it must start with */
} pcase_t;

/* Each presentation of data/safety-rules.txt, in other words than its
 * phrases: English, simplified and traditional Chinese. */
static const pcase_t positive[] = {
    /* cardiac */
    {"my husband has a heavy pressure in the middle of his chest and is grey and sweaty", QC_URGENT_CARDIAC, "cardiac"},
    {"tight band across my chest for half an hour spreading to my jaw", QC_URGENT_CARDIAC, "cardiac"},
    {"chest pain going down my left arm, feel sick", QC_URGENT_CARDIAC, "cardiac"},
    {"my mum's got an ache in her jaw and left arm, she's clammy and feels sick, could it be her heart", QC_URGENT_CARDIAC, "cardiac"},
    {"pulse 180 for the last hour, chest feels tight and I nearly fainted", QC_URGENT_CARDIAC, "cardiac"},
    {"爸爸胸口像压了块大石头，满头冷汗", QC_URGENT_CARDIAC, "cardiac"},
    {"胸骨后面压榨样疼了半小时，还想吐", QC_URGENT_CARDIAC, "cardiac"},
    {"我媽胸口悶痛，痛到左手臂，一直冒冷汗", QC_URGENT_CARDIAC, "cardiac"},
    /* stroke */
    {"his smile is lopsided and he can't lift his right arm", QC_URGENT_STROKE, "stroke"},
    {"she suddenly can't get her words out and her face looks droopy", QC_URGENT_STROKE, "stroke"},
    {"dad woke up and his left arm and leg are numb", QC_URGENT_STROKE, "stroke"},
    {"妈妈突然说话含糊，右手拿不住筷子", QC_URGENT_STROKE, "stroke"},
    {"爺爺突然嘴歪了，左邊手腳沒力氣", QC_URGENT_STROKE, "stroke"},
    /* thunderclap */
    {"worst headache of my life came on in a second, I'm throwing up", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"sudden explosive headache at the gym, now my neck is stiff", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"突然头痛欲裂，像被人打了一棍，还吐了", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"頭突然炸裂一樣痛，這輩子最痛的一次", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    /* meningitis and sepsis */
    {"my son has a fever and a rash that doesn't go away when I press a glass on it", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"temperature 39.6, shivering uncontrollably, my skin is blotchy and I feel like I'm dying", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"high fever and a stiff neck, can't stand the light", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"孩子发烧，身上出了紫色的点，按压不褪色", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"高燒40度，脖子硬，怕光", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    /* anaphylaxis */
    {"ate a prawn and now my lips and tongue are swelling and I'm wheezing", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"wasp sting, now hives all over and my throat feels tight", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"吃了海鲜全身起风团，喉咙发紧喘不上气", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"打完針後嘴唇腫起來，呼吸困難", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    /* airway */
    {"my toddler is choking on a grape, she can't cry", QC_URGENT_BREATHING, "airway"},
    {"baby swallowed a button and is gagging and drooling", QC_URGENT_BREATHING, "airway"},
    {"my tongue has swollen up so much I can't swallow or talk", QC_URGENT_BREATHING, "airway"},
    {"孩子吃果冻噎住了，脸都紫了", QC_URGENT_BREATHING, "airway"},
    {"寶寶被硬幣卡住，一直流口水發不出聲", QC_URGENT_BREATHING, "airway"},
    /* breathing */
    {"her lips are turning blue and she's struggling to breathe", QC_URGENT_BREATHING, "breathing"},
    {"asthma attack, the inhaler isn't working and he can't talk", QC_URGENT_BREATHING, "breathing"},
    {"oxygen sats 88% and I'm fighting for breath", QC_URGENT_BREATHING, "breathing"},
    {"宝宝呼吸很快，肋骨往里凹", QC_URGENT_BREATHING, "breathing"},
    {"哮喘發作，噴了藥也沒用，喘不上氣", QC_URGENT_BREATHING, "breathing"},
    /* bleeding */
    {"cut my arm on glass and blood is spurting out", QC_URGENT_BLEEDING, "bleeding"},
    {"on apixaban and my gums have been bleeding for two hours, it won't stop", QC_URGENT_BLEEDING, "bleeding"},
    {"I'm on warfarin and I fell and banged my head", QC_URGENT_BLEEDING, "bleeding"},
    {"vomiting blood, loads of it", QC_URGENT_BLEEDING, "bleeding"},
    {"吃华法林的，鼻子流血一个小时止不住", QC_URGENT_BLEEDING, "bleeding"},
    {"傷口一直流血，止不住", QC_URGENT_BLEEDING, "bleeding"},
    /* head injury */
    {"my son hit his head on the pavement, he was knocked out and now keeps vomiting", QC_URGENT_EMERGENCY, "head_injury"},
    {"fell off a ladder onto my head, clear fluid coming from my ear", QC_URGENT_EMERGENCY, "head_injury"},
    {"宝宝从床上摔下来，头着地，吐了两次", QC_URGENT_EMERGENCY, "head_injury"},
    {"撞到頭以後一直想睡，叫不太醒", QC_URGENT_EMERGENCY, "head_injury"},
    /* seizures */
    {"my wife is having a seizure and it's been going on for 6 minutes", QC_URGENT_SEIZURE, "seizure"},
    {"my 3 year old is fitting with a high temperature", QC_URGENT_SEIZURE, "seizure"},
    {"孩子高烧抽搐，眼睛往上翻", QC_URGENT_SEIZURE, "seizure"},
    {"我爸突然倒地全身抽搐，口吐白沫", QC_URGENT_SEIZURE, "seizure"},
    {"女兒抽筋了，叫她沒反應", QC_URGENT_SEIZURE, "seizure"},
    /* unconscious */
    {"found my dad on the floor, he won't wake up", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"she collapsed and isn't breathing", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"奶奶晕倒了，怎么叫都没反应", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"他昏過去了，叫不醒", QC_URGENT_UNCONSCIOUS, "unconscious"},
    /* poisoning */
    {"I've taken 24 paracetamol tablets", QC_URGENT_POISONING, "poisoning"},
    {"my boyfriend swallowed about 15 of his diazepam", QC_URGENT_POISONING, "poisoning"},
    {"my 2 year old got into the dishwasher tablets and ate one", QC_URGENT_POISONING, "poisoning"},
    {"the toddler found my iron tablets and ate some of them", QC_URGENT_POISONING, "poisoning"},
    {"our carbon monoxide alarm went off and we all have headaches", QC_URGENT_POISONING, "poisoning"},
    {"我一次吃了30片安眠药", QC_URGENT_POISONING, "poisoning"},
    {"孩子误喝了洗洁精", QC_URGENT_POISONING, "poisoning"},
    {"爸爸喝了农药", QC_URGENT_POISONING, "poisoning"},
    {"孩子偷吃了奶奶的降壓藥，不知道吃了多少", QC_URGENT_POISONING, "poisoning"},
    /* diabetic */
    {"my sugar is 28 and I keep being sick, breathing fast", QC_URGENT_EMERGENCY, "diabetic"},
    {"my diabetic dad is very confused and sweaty, he won't drink anything", QC_URGENT_EMERGENCY, "diabetic"},
    {"blood sugar 2.4 and I'm shaking and confused", QC_URGENT_EMERGENCY, "diabetic"},
    {"血糖30多，一直呕吐，呼吸很深", QC_URGENT_EMERGENCY, "diabetic"},
    {"糖尿病的爸爸意識不清，叫不醒", QC_URGENT_EMERGENCY, "diabetic"},
    /* pregnancy */
    {"I'm 7 weeks pregnant with bad pain on my left side and my shoulder tip hurts, feel faint", QC_URGENT_EMERGENCY, "pregnancy"},
    {"32 weeks pregnant, bleeding heavily with bad tummy pain", QC_URGENT_EMERGENCY, "pregnancy"},
    {"pregnant, bad headache and blurred vision, my hands are puffy", QC_URGENT_EMERGENCY, "pregnancy"},
    {"34 weeks and the baby hasn't moved all day", QC_URGENT_EMERGENCY, "pregnancy"},
    {"怀孕30周，突然大量出血，肚子很痛", QC_URGENT_EMERGENCY, "pregnancy"},
    {"懷孕36週，頭很痛，看東西模糊", QC_URGENT_EMERGENCY, "pregnancy"},
    /* torsion */
    {"my teenage son has sudden severe pain in one testicle", QC_URGENT_EMERGENCY, "torsion"},
    {"儿子睾丸突然剧痛，还吐了", QC_URGENT_EMERGENCY, "torsion"},
    /* burns */
    {"my daughter spilled boiling water on her arm and the skin is peeling", QC_URGENT_EMERGENCY, "burns"},
    {"splashed acid in my eye at work", QC_URGENT_EMERGENCY, "burns"},
    {"孩子被开水烫伤了，皮都掉了", QC_URGENT_EMERGENCY, "burns"},
    /* heat and cold */
    {"marathon runner collapsed, he's very hot, confused and not sweating", QC_URGENT_EMERGENCY, "heat"},
    {"老人在高温下干活后胡言乱语，不出汗", QC_URGENT_EMERGENCY, "heat"},
    {"pulled him out of the freezing river, he's mumbling and stopped shivering", QC_URGENT_EMERGENCY, "hypothermia"},
    {"老人在外面冻了一夜，意识模糊", QC_URGENT_EMERGENCY, "hypothermia"},
    /* infant */
    {"my 5 week old has a temperature of 38.5", QC_URGENT_CHILD, "infant"},
    {"my newborn is floppy and won't feed", QC_URGENT_CHILD, "infant"},
    {"baby is grunting with every breath", QC_URGENT_CHILD, "infant"},
    {"新生儿发烧38度", QC_URGENT_CHILD, "infant"},
    {"寶寶軟綿綿的，不吃奶", QC_URGENT_CHILD, "infant"},
    /* suicide and self-harm */
    {"I have a bottle of vodka and all my pills lined up, tonight is it", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"going to jump off the bridge tonight", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"I've been cutting myself again and it's deep this time", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我已经写好遗书了", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我想从12楼跳下去", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我真的不想活了，藥都準備好了", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我攒了一百片安眠药", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    /* violence and abuse */
    {"my partner is strangling me, I got away and I'm hiding", QC_URGENT_ABUSE, "violence_abuse"},
    {"he has a knife and says he'll kill me", QC_URGENT_ABUSE, "violence_abuse"},
    {"my daughter says her uncle touched her", QC_URGENT_ABUSE, "violence_abuse"},
    {"老公喝醉了拿着刀要杀了我", QC_URGENT_ABUSE, "violence_abuse"},
    {"我被男朋友打了，他還在門外砸門", QC_URGENT_ABUSE, "violence_abuse"},
    /* other acute */
    {"sudden severe back pain, numb between my legs and I can't pee", QC_URGENT_EMERGENCY, "other_acute"},
    {"my hernia came out and won't go back in, I'm vomiting", QC_URGENT_EMERGENCY, "other_acute"},
    {"severe pain in my eye with halos around lights and vomiting", QC_URGENT_EMERGENCY, "other_acute"},
    {"腰痛，屁股发麻，大小便失禁", QC_URGENT_EMERGENCY, "other_acute"},
    /* a sixth batch: the same signs in their plain, urgent form */
    {"I can't breathe at all, my chest is so tight and my lips are blue", QC_URGENT_CARDIAC, "cardiac"},
    {"my right arm suddenly went weak and my speech is slurred", QC_URGENT_STROKE, "stroke"},
    {"my husband won't wake up and he's breathing strangely", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"I took a whole box of my sleeping tablets", QC_URGENT_POISONING, "poisoning"},
    {"my diabetic dad is confused and sweating, his sugar is 2.1", QC_URGENT_EMERGENCY, "diabetic"},
    /* a seventh batch: more wordings of each sign */
    {"had indigestion all evening that won't go away, now I'm sweaty and feel sick, 62m", QC_URGENT_CARDIAC, "cardiac"},
    {"my heart is racing and I've got chest pain, nearly passed out", QC_URGENT_CARDIAC, "cardiac"},
    {"my husband suddenly can't feel his left side", QC_URGENT_STROKE, "stroke"},
    {"mum keeps dropping things with her right hand since this morning", QC_URGENT_STROKE, "stroke"},
    {"temperature of 39.5 after my chemo, I feel like I'm dying", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"I used my epipen after eating a nut, still feel awful", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"his breathing is really laboured and his ribs are showing with each breath", QC_URGENT_BREATHING, "breathing"},
    {"short of breath at rest and can only say a few words at a time", QC_URGENT_BREATHING, "breathing"},
    {"the cut on his head is bleeding through the towel and won't stop", QC_URGENT_BLEEDING, "bleeding"},
    {"hit my head on the car door, blacked out and now my pupils look different sizes", QC_URGENT_EMERGENCY, "head_injury"},
    {"my daughter is having a seizure right now what do i do", QC_URGENT_SEIZURE, "seizure"},
    {"I think I've taken too many of my heart tablets", QC_URGENT_POISONING, "poisoning"},
    {"my son ate wild mushrooms from the garden", QC_URGENT_POISONING, "poisoning"},
    {"type 1, my sugar is really high and I've been vomiting all night", QC_URGENT_EMERGENCY, "diabetic"},
    {"having a bad hypo, my wife can't get me to swallow anything and I'm confused", QC_URGENT_EMERGENCY, "diabetic"},
    {"heavy bleeding at 10 weeks pregnant with cramping", QC_URGENT_EMERGENCY, "pregnancy"},
    {"33 weeks pregnant with a severe headache and my face is swollen", QC_URGENT_EMERGENCY, "pregnancy"},
    {"he got an electric shock from the socket", QC_URGENT_EMERGENCY, "burns"},
    {"burned my arm badly on the barbecue", QC_URGENT_EMERGENCY, "burns"},
    {"fell in the lake, now he's very cold and drowsy", QC_URGENT_EMERGENCY, "hypothermia"},
    {"my 3 month old is pale and floppy", QC_URGENT_CHILD, "infant"},
    {"I can't live like this anymore, I'm going to take all my pills", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"he hit me again and i'm scared to go home", QC_URGENT_ABUSE, "violence_abuse"},
    {"sudden severe pain in my stomach, came on an hour ago, can't move", QC_URGENT_EMERGENCY, "other_acute"},
    /* an eighth batch: Chinese, simplified and traditional */
    {"我爸说胸口闷得喘不过气，还出冷汗，脸都白了", QC_URGENT_CARDIAC, "cardiac"},
    {"心脏那里像针扎一样疼，疼到后背，快半个小时了", QC_URGENT_CARDIAC, "cardiac"},
    {"老婆胸口疼得厉害，左胳膊发麻", QC_URGENT_CARDIAC, "cardiac"},
    {"我妈刚才突然说不出话，右边胳膊抬不起来", QC_URGENT_STROKE, "stroke"},
    {"爷爷早上起来一边脸麻，说话大舌头", QC_URGENT_STROKE, "stroke"},
    {"我老公突然看东西重影，走路往一边倒", QC_URGENT_STROKE, "stroke"},
    {"突然头痛得像要裂开一样，从来没这么痛过，还吐了", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"孩子高烧不退，身上起了出血点，按了也不褪", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"老人发烧39度，意识模糊，手脚冰凉", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"吃了虾以后嘴唇肿了，喘不上气", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"被蜜蜂蜇了以后全身起疙瘩，嗓子发紧", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"孩子吃花生呛到了，脸憋得发紫", QC_URGENT_BREATHING, "airway"},
    {"老人吃饭噎住了，说不出话", QC_URGENT_BREATHING, "airway"},
    {"宝宝呼吸很费劲，嘴唇发紫", QC_URGENT_BREATHING, "breathing"},
    {"哮喘发作了，喷了好几次都没用，说话都说不完整", QC_URGENT_BREATHING, "breathing"},
    {"菜刀切到手腕，血一直往外喷", QC_URGENT_BLEEDING, "bleeding"},
    {"我爸吐血了，吐了好多", QC_URGENT_BLEEDING, "bleeding"},
    {"拉的大便是黑色的，人头晕站不起来", QC_URGENT_BLEEDING, "bleeding"},
    {"孩子从楼梯上摔下来，头着地，吐了好几次", QC_URGENT_EMERGENCY, "head_injury"},
    {"老人摔倒撞到头，现在迷迷糊糊的", QC_URGENT_EMERGENCY, "head_injury"},
    {"孩子发烧抽搐了五分钟还没停", QC_URGENT_SEIZURE, "seizure"},
    {"我爸突然倒地抽搐，叫他没反应", QC_URGENT_SEIZURE, "seizure"},
    {"我妈突然晕倒了，叫不醒", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"他倒在地上，没有呼吸了", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"孩子把我的降压药吃了好几片", QC_URGENT_POISONING, "poisoning"},
    {"我老公喝了半瓶农药", QC_URGENT_POISONING, "poisoning"},
    {"家里烧炭取暖，一家人都头晕想吐", QC_URGENT_POISONING, "poisoning"},
    {"我一下子吃了二十片安眠药", QC_URGENT_POISONING, "poisoning"},
    {"糖尿病人血糖低到2点几，人都糊涂了", QC_URGENT_EMERGENCY, "diabetic"},
    {"血糖三十多，一直吐，呼吸很急", QC_URGENT_EMERGENCY, "diabetic"},
    {"怀孕七个月，突然大出血", QC_URGENT_EMERGENCY, "pregnancy"},
    {"怀孕两个月，右下腹剧痛，头晕想吐", QC_URGENT_EMERGENCY, "pregnancy"},
    {"怀孕35周，胎动明显少了", QC_URGENT_EMERGENCY, "pregnancy"},
    {"儿子半夜睾丸疼得厉害，还吐了", QC_URGENT_EMERGENCY, "torsion"},
    {"孩子被开水烫了一大片，起了很多水泡", QC_URGENT_EMERGENCY, "burns"},
    {"脸被热油烫伤了", QC_URGENT_EMERGENCY, "burns"},
    {"老人在高温下晕倒了，身上很烫，不出汗", QC_URGENT_EMERGENCY, "heat"},
    {"老人在雪地里冻了一夜，叫不太醒", QC_URGENT_EMERGENCY, "hypothermia"},
    {"一个月的宝宝发烧38度5", QC_URGENT_CHILD, "infant"},
    {"宝宝不吃奶，一直睡，叫不醒", QC_URGENT_CHILD, "infant"},
    {"我不想活了，已经买好了安眠药", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我想跳楼，现在就在楼顶", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"活着太累了，想一了百了", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我今晚就想结束自己的生命", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"老公又打我了，我现在躲在厕所里", QC_URGENT_ABUSE, "violence_abuse"},
    {"他拿刀威胁我，说要杀了我", QC_URGENT_ABUSE, "violence_abuse"},
    {"肚子突然剧痛，硬得像木板一样", QC_URGENT_EMERGENCY, "other_acute"},
    {"我爸胸口痛得厉害，一直冒冷汗", QC_URGENT_CARDIAC, "cardiac"},
    {"奶奶突然嘴巴歪了，口齿不清", QC_URGENT_STROKE, "stroke"},
    {"孩子突然抽筋，叫不醒", QC_URGENT_SEIZURE, "seizure"},
    {"孩子誤食了洗衣凝珠", QC_URGENT_POISONING, "poisoning"},
    {"我真的撐不下去了，想自殺", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"呼吸好困難，嘴唇都發紫了", QC_URGENT_BREATHING, "breathing"},
    {"傷口一直流血，怎麼壓都止不住", QC_URGENT_BLEEDING, "bleeding"},
    /* a ninth batch: the weakest presentations again */
    {"my 4 year old drank a load of calpol when i wasn't looking, the bottle is nearly empty", QC_URGENT_POISONING, "poisoning"},
    {"my brother mixed his methadone with vodka and now he's snoring weirdly and we can't wake him", QC_URGENT_POISONING, "poisoning"},
    {"took my nan's tablets thinking they were mine, 10 of her heart pills", QC_URGENT_POISONING, "poisoning"},
    {"found my toddler chewing a laundry pod, there's blue liquid in his mouth", QC_URGENT_POISONING, "poisoning"},
    {"drank from a bottle that had weedkiller in it by mistake", QC_URGENT_POISONING, "poisoning"},
    {"my friend took ecstasy and now she's burning hot and fitting", QC_URGENT_POISONING, "poisoning"},
    {"fell on a broken bottle, deep cut on my palm, blood dripping everywhere", QC_URGENT_BLEEDING, "bleeding"},
    {"after my tooth extraction the bleeding hasn't stopped for 6 hours", QC_URGENT_BLEEDING, "bleeding"},
    {"my dad is coughing up bright red blood, a lot of it", QC_URGENT_BLEEDING, "bleeding"},
    {"my son put his hand on the hob, it's all blistered and white", QC_URGENT_EMERGENCY, "burns"},
    {"scalded my foot with boiling water, huge blisters and the skin is coming away", QC_URGENT_EMERGENCY, "burns"},
    {"my 16yo is doubled over with pain in his testicle, came on suddenly at school", QC_URGENT_EMERGENCY, "torsion"},
    {"really bad pain in my right side, can't stand up straight, vomiting and fever of 39", QC_URGENT_EMERGENCY, "other_acute"},
    {"my dad's belly is rock hard and he's in agony", QC_URGENT_EMERGENCY, "other_acute"},
    {"i'm going to kill myself, i've got the pills counted out", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i've got a bottle of paracetamol and i'm going to take it tonight", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"thinking about walking in front of a train later", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i just swallowed a whole pack of my antidepressants", QC_URGENT_POISONING, "poisoning"},
    {"my boyfriend beat me up and locked me out, i'm bleeding from my nose", QC_URGENT_ABUSE, "violence_abuse"},
    {"my ex is outside with a baseball bat threatening to smash the house", QC_URGENT_ABUSE, "violence_abuse"},
    {"my lips are swelling after the new antibiotic and my throat feels funny", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"she's allergic to peanuts and ate a satay, now she's wheezy and floppy", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"my baby swallowed a small battery and is drooling", QC_URGENT_POISONING, "poisoning"},
    {"dad choked on his dinner and now he's gone quiet and blue", QC_URGENT_BREATHING, "airway"},
    {"my son is shaking and unresponsive and his eyes are rolling back", QC_URGENT_SEIZURE, "seizure"},
    {"his seizure has gone on for 8 minutes now", QC_URGENT_SEIZURE, "seizure"},
    {"my daughter with type 1 is breathing fast and deep and her breath smells like pear drops", QC_URGENT_EMERGENCY, "diabetic"},
    {"my diabetic husband collapsed and I can't wake him", QC_URGENT_EMERGENCY, "diabetic"},
    {"pregnant and have a pain on one side like a knife, and my shoulder hurts, I nearly fainted", QC_URGENT_EMERGENCY, "pregnancy"},
    {"37 weeks and I've had a bad headache all day, and I'm seeing flashing lights", QC_URGENT_EMERGENCY, "pregnancy"},
    /* a tenth batch: the blind set's scenarios in other words (my own) */
    {"ive been collecting my meds for weeks, theres about 80 now. planning to do it friday", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i wrote a note for my parents and left it on the table. im sorry for everything", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i sliced my arm really deep and i cant get it to stop, i wanted to die", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"got my dad's shotgun out of the cabinet, i don't see the point anymore", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"I'm on the 14th floor balcony and I'm going to jump", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i want to end it. i have a box of my husband's oxycodone and he's away all week", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"gave my dog to my neighbour and cancelled everything. tonight's the night", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"injected all my insulin on purpose 30 mins ago, feel shaky", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i tied a noose in the garage", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"my partner had his hands round my neck last night and today he says he'll do it again", QC_URGENT_ABUSE, "violence_abuse"},
    {"my son (9) says the babysitter hits him and locks him in his room", QC_URGENT_ABUSE, "violence_abuse"},
    {"a guy with a knife is trying to get into my car", QC_URGENT_ABUSE, "violence_abuse"},
    {"my husband punched me in the belly and i'm 7 months pregnant, there's some bleeding", QC_URGENT_ABUSE, "violence_abuse"},
    {"my drunk father is throwing things at us and smashing plates, we're hiding", QC_URGENT_ABUSE, "violence_abuse"},
    {"my 2 year old drank some vape liquid", QC_URGENT_POISONING, "poisoning"},
    {"i took 15 zopiclone and half a bottle of gin", QC_URGENT_POISONING, "poisoning"},
    {"took 6000mg of paracetamol today across the day", QC_URGENT_POISONING, "poisoning"},
    {"my son swallowed two magnets from a fidget toy and has tummy ache", QC_URGENT_POISONING, "poisoning"},
    {"found my husband slumped with his lips blue, he uses heroin", QC_URGENT_POISONING, "poisoning"},
    {"our gas fire has been on all day and my grandparents are both confused and drowsy", QC_URGENT_POISONING, "poisoning"},
    {"my wife had a baby 5 days ago and is now bleeding heavily with big clots", QC_URGENT_BLEEDING, "bleeding"},
    {"i've been vomiting blood and I feel faint", QC_URGENT_BLEEDING, "bleeding"},
    {"blood is pumping out of a cut on his arm", QC_URGENT_BLEEDING, "bleeding"},
    {"stabbed in the leg, bleeding loads", QC_URGENT_BLEEDING, "bleeding"},
    {"my son's throat is closing up after a wasp sting and he's drooling", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"the baby has something lodged in her throat and is turning blue", QC_URGENT_BREATHING, "airway"},
    {"i'm allergic to penicillin and they gave me amoxicillin, now my face is swollen and i'm wheezing", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"he ate sesame and now his throat is tight and his voice has gone hoarse", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"my friend has been having fits one after another and hasn't woken in between", QC_URGENT_SEIZURE, "seizure"},
    {"my daughter's first seizure, she's 2 and very hot", QC_URGENT_SEIZURE, "seizure"},
    {"my type 1 son has been vomiting since midnight and his ketones are 3.8", QC_URGENT_EMERGENCY, "diabetic"},
    {"diabetic grandma is sweaty, shaking and not making sense", QC_URGENT_EMERGENCY, "diabetic"},
    {"i'm pregnant and the pain on my left side is terrible and I feel faint", QC_URGENT_EMERGENCY, "pregnancy"},
    {"28 weeks and my waters have gone", QC_URGENT_EMERGENCY, "pregnancy"},
    {"my son's testicle is swollen and really painful after he woke up, he's 11", QC_URGENT_EMERGENCY, "torsion"},
    {"my dad got burned with hot tar, his arm is black and white", QC_URGENT_EMERGENCY, "burns"},
    {"chip pan fire, my hands are burned and blistering and i can't stop coughing", QC_URGENT_EMERGENCY, "burns"},
    {"my groin hernia is stuck out, hard and purple and i keep throwing up", QC_URGENT_EMERGENCY, "other_acute"},
    {"suddenly can't pee and there's numbness around my bottom after lifting", QC_URGENT_EMERGENCY, "other_acute"},
    /* sudden severe pain anywhere */
    {"sudden excruciating pain in my leg, it's cold and white", QC_URGENT_EMERGENCY, "other_acute"},
    {"突然腰部剧痛，疼得打滚", QC_URGENT_EMERGENCY, "other_acute"},
    /* written Cantonese (fold dialect) */
    {"我阿爸突然冇反應，叫佢唔應", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"阿嫲塊面歪咗，講嘢講唔清楚", QC_URGENT_STROKE, "stroke"},
    {"我唔想再撐落去，已經食晒啲藥", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"個仔哮喘發作，噴咗藥都冇用，講唔到成句說話", QC_URGENT_BREATHING, "breathing"},
    {"BB一個月大，發燒38.5，唔肯食奶", QC_URGENT_CHILD, "infant"},
    {"細佬飲咗農藥", QC_URGENT_POISONING, "poisoning"},
    /* a fourth batch: suicide plans, means and method research; burns, torsion, surgical emergencies */
    {"im going to end my life tonight, ive made up my mind", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"I don't want to wake up tomorrow, I've taken everything in the cupboard", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"everyone would be better off without me. ive got a knife", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"how many paracetamol would it take to kill me", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"what's the lethal dose of amitriptyline, i have 2 boxes", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i've got a plan and i'm going to do it this weekend", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"sitting in my car in the garage with the engine running", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i'm going to hang myself from the loft hatch", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"holding a razor blade to my wrist right now", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"by the time you read this I'll be gone", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"I'm a burden to everyone, I've decided to end it tonight", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i took all my pills 20 mins ago i dont want help", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我不想再醒来了，药都吃了", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"查了一下吃多少片安眠药会死", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"已经想好怎么做了，就在今晚", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"买了木炭，准备在家里烧", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"大家没有我会过得更好，永别了", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"拿着刀片对着手腕", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"my kid pulled a pan of hot oil onto himself, his arm is red raw and blistering", QC_URGENT_EMERGENCY, "burns"},
    {"electrician here, my colleague got a shock from the mains and has a burn on his hand, he says his chest feels weird", QC_URGENT_EMERGENCY, "burns"},
    {"caught my leg on the exhaust, big burn the size of my hand, skin is white in the middle", QC_URGENT_EMERGENCY, "burns"},
    {"bleach splashed in my eye and it's burning like hell", QC_URGENT_EMERGENCY, "burns"},
    {"my son (13) has sudden terrible pain in his scrotum and keeps throwing up", QC_URGENT_EMERGENCY, "torsion"},
    {"pain in my left testicle came on suddenly an hour ago and it's unbearable, 17m", QC_URGENT_EMERGENCY, "torsion"},
    {"severe stomach pain, vomiting and I haven't pooed or passed wind for 2 days, belly is swollen", QC_URGENT_EMERGENCY, "other_acute"},
    {"my wife has sudden severe pain in her lower belly and she fainted, she might be pregnant", QC_URGENT_EMERGENCY, "pregnancy"},
    {"my eye is red and really painful, vision went blurry suddenly and I feel sick", QC_URGENT_EMERGENCY, "other_acute"},
    {"my husband cut his leg with the chainsaw and it's bleeding a lot", QC_URGENT_BLEEDING, "bleeding"},
    {"nose has been pouring blood for an hour and I'm on aspirin and clopidogrel", QC_URGENT_BLEEDING, "bleeding"},
    {"vomiting what looks like coffee grounds and feel faint", QC_URGENT_BLEEDING, "bleeding"},
    {"blood pouring from a wound on my head", QC_URGENT_BLEEDING, "bleeding"},
    {"24 weeks pregnant and i'm losing fluid and having contractions", QC_URGENT_EMERGENCY, "pregnancy"},
    {"pregnant and having a fit", QC_URGENT_EMERGENCY, "pregnancy"},
    {"5 weeks pregnant, bleeding and the pain on my right side is getting worse, dizzy", QC_URGENT_EMERGENCY, "pregnancy"},
    {"my mum is having a seizure and she's diabetic, it won't stop", QC_URGENT_SEIZURE, "seizure"},
    {"grandad's arms and legs are jerking and he's not responding", QC_URGENT_SEIZURE, "seizure"},
    {"my son had a seizure and hasn't woken up after 15 minutes", QC_URGENT_SEIZURE, "seizure"},
    {"took 12 of my co-codamol in one go", QC_URGENT_POISONING, "poisoning"},
    {"my daughter drank some washing up liquid and is coughing", QC_URGENT_POISONING, "poisoning"},
    {"husband took a massive overdose of his insulin", QC_URGENT_POISONING, "poisoning"},
    {"accidentally took two doses of methotrexate this week instead of one", QC_URGENT_POISONING, "poisoning"},
    {"i think my friend has alcohol poisoning, she's passed out and vomiting", QC_URGENT_POISONING, "poisoning"},
    {"my dog bit a battery and my son licked it too", QC_URGENT_POISONING, "poisoning"},
    /* a third batch, longer messages as patients write them */
    {"hi doc my dad (71) says he has indigestion but hes been rubbing his chest for an hour, hes pale and sweaty and says his left shoulder aches", QC_URGENT_CARDIAC, "cardiac"},
    {"sitting at my desk and got this heavy feeling in my chest like a weight, it goes up into my throat, feel a bit breathless, 60m", QC_URGENT_CARDIAC, "cardiac"},
    {"wife is 48, had chest discomfort on and off since lunch, now its constant and she's gone clammy", QC_URGENT_CARDIAC, "cardiac"},
    {"my nan is slurring her words and her left hand keeps dropping things, started about 20 mins ago", QC_URGENT_STROKE, "stroke"},
    {"husband came home and one side of his face has gone saggy, he keeps saying the wrong words", QC_URGENT_STROKE, "stroke"},
    {"my right leg and arm just went weak and tingly out of the blue, 52f", QC_URGENT_STROKE, "stroke"},
    {"bent down to pick up my son and got the most horrendous pain in my head like never before, now feel sick and the light hurts", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"i never get headaches but this one came out of nowhere and its 10/10, neck is stiff", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"my 18 month old is burning up, very sleepy, and has tiny red dots on her chest that dont disappear when i press", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"UTI for 3 days, now 39.4, shivering like mad, heart racing and I feel really confused", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"stung by something in the garden, my whole face and eyes are puffing up and my chest feels tight", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"son ate a cookie with nuts, hes coughing, hoarse voice and covered in hives, we have an epipen", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"my 10 month old put a small toy in her mouth and now shes coughing and making a whistling noise and cant settle", QC_URGENT_BREATHING, "airway"},
    {"husband choking on steak, cant speak, pointing at his throat", QC_URGENT_BREATHING, "airway"},
    {"mum has copd and today she's much worse, lips are bluish, can only say a couple of words at a time", QC_URGENT_BREATHING, "breathing"},
    {"my son (6) with asthma, used 10 puffs of blue inhaler and still struggling, his tummy is sucking in", QC_URGENT_BREATHING, "breathing"},
    {"sliced my hand with a bread knife, blood won't stop even with a towel pressed on it for 15 min", QC_URGENT_BLEEDING, "bleeding"},
    {"dad is on rivaroxaban and his pee has gone bright red with clots and he feels faint", QC_URGENT_BLEEDING, "bleeding"},
    {"im passing large amounts of bright red blood from my bum and feel dizzy", QC_URGENT_BLEEDING, "bleeding"},
    {"teenager fell off his skateboard no helmet, hit his head, knocked out for a minute and now keeps asking the same questions", QC_URGENT_EMERGENCY, "head_injury"},
    {"grandma slipped and banged her head on the bath, now shes being sick and very sleepy", QC_URGENT_EMERGENCY, "head_injury"},
    {"my son has been shaking and jerking for about 4 mins and his lips look blue, he has never had one before", QC_URGENT_SEIZURE, "seizure"},
    {"my daughter had a febrile fit and now she's having another one straight after", QC_URGENT_SEIZURE, "seizure"},
    {"my flatmate is on the floor, i cant wake him, he's breathing really slowly", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"mum keeled over in the kitchen and she isn't answering me", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"my 2yo drank some of the bottle of bleach from under the sink, his mouth is red", QC_URGENT_POISONING, "poisoning"},
    {"I've swallowed about 50 of my antidepressants, I'm scared now", QC_URGENT_POISONING, "poisoning"},
    {"my friend took a load of pills at a party and wont wake up properly", QC_URGENT_POISONING, "poisoning"},
    {"took double my insulin by mistake and feel shaky and sweaty", QC_URGENT_POISONING, "poisoning"},
    {"my son's type 1, sugar reading 27, he's vomiting and breathing really deep and hes drowsy", QC_URGENT_EMERGENCY, "diabetic"},
    {"diabetic neighbour is slurring, sweating and seems drunk but she doesn't drink", QC_URGENT_EMERGENCY, "diabetic"},
    {"im 9 weeks and suddenly bleeding loads with clots, soaking pads every hour", QC_URGENT_EMERGENCY, "pregnancy"},
    {"35 weeks pregnant and my belly went hard and really painful and won't relax, and a bit of bleeding", QC_URGENT_EMERGENCY, "pregnancy"},
    {"haven't felt my baby kick since yesterday morning, 33 weeks", QC_URGENT_EMERGENCY, "pregnancy"},
    {"14 yo woke at 3am screaming with pain in his balls, one side is high and swollen", QC_URGENT_EMERGENCY, "torsion"},
    {"my dad fell asleep smoking and his arm and chest got burned, big white patches", QC_URGENT_EMERGENCY, "burns"},
    {"toddler grabbed hair straighteners, burn across her palm and fingers is blistering badly", QC_URGENT_EMERGENCY, "burns"},
    {"festival, my mate is boiling hot, not sweating, talking nonsense and keeps collapsing", QC_URGENT_EMERGENCY, "heat"},
    {"found an old man sitting outside in the frost this morning, he's very cold, confused and barely talking", QC_URGENT_EMERGENCY, "hypothermia"},
    {"my 3 week old keeps vomiting bright green and her tummy is swollen", QC_URGENT_CHILD, "infant"},
    {"my baby's breathing is really fast and she's making a grunting noise, 2 months", QC_URGENT_CHILD, "infant"},
    {"newborn hasn't had a wet nappy in 12 hours and is really sleepy", QC_URGENT_CHILD, "infant"},
    {"i have the rope ready and i just want it to be over", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"planning on taking all my sertraline tonight when everyone is asleep", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"ive been cutting really deep tonight and it wont stop bleeding", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"no point anymore, ive decided. the pills are in my bag", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"my dad is drunk and hitting my mum, we are hiding upstairs", QC_URGENT_ABUSE, "violence_abuse"},
    {"my partner pushed me down the stairs and took my phone, im scared he'll come back", QC_URGENT_ABUSE, "violence_abuse"},
    {"a man followed me home and is now trying my door handle", QC_URGENT_ABUSE, "violence_abuse"},
    {"sudden tearing pain in my chest going through to my back, 68m", QC_URGENT_EMERGENCY, "other_acute"},
    {"terrible pain in my lower right belly, cant walk straight, fever 38.8, worse when i move", QC_URGENT_EMERGENCY, "other_acute"},
    /* a second batch, written later, without looking at the rules */
    {"feels like an elephant is sitting on my chest and I'm drenched in sweat", QC_URGENT_CARDIAC, "cardiac"},
    {"pain behind my sternum spreading into my neck, short of breath", QC_URGENT_CARDIAC, "cardiac"},
    {"my grandpa is clutching his chest and can't catch his breath", QC_URGENT_CARDIAC, "cardiac"},
    {"squeezing feeling in my chest for 20 mins, throwing up", QC_URGENT_CARDIAC, "cardiac"},
    {"心口疼得厉害，还出了一身冷汗，脸色发白", QC_URGENT_CARDIAC, "cardiac"},
    {"老公说胸口像被勒住一样，喘不过气", QC_URGENT_CARDIAC, "cardiac"},
    {"my wife's speech went slurred all of a sudden and her face drooped", QC_URGENT_STROKE, "stroke"},
    {"dad can't raise his left arm and his mouth is crooked", QC_URGENT_STROKE, "stroke"},
    {"mum is talking gibberish and can't move her right side", QC_URGENT_STROKE, "stroke"},
    {"奶奶突然一边身体动不了，说不出话", QC_URGENT_STROKE, "stroke"},
    {"我爸嘴角歪了，口水流出来", QC_URGENT_STROKE, "stroke"},
    {"the worst headache I've ever had hit me like a truck, now I can't stop vomiting", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"thunderclap headache during a workout 30 mins ago", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"我老婆突然喊头痛得要炸开，然后吐了", QC_URGENT_EMERGENCY, "neuro.thunderclap"},
    {"baby has a temp of 39 and dark red spots that don't fade with the glass", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"feverish, confused and my hands and feet are freezing and mottled", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"my daughter has a fever, a headache and a stiff neck and the light hurts her eyes", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"发高烧，皮肤上有一片片紫斑", QC_URGENT_EMERGENCY, "sepsis_meningitis"},
    {"my face is swelling up after eating cashews and I can hardly breathe", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"allergic reaction to the antibiotic, throat closing up", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"used his epipen after eating peanuts but he's still wheezing", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"吃了芒果嘴巴肿了，喉咙发紧", QC_URGENT_ANAPHYLAXIS, "anaphylaxis"},
    {"my son is choking and turning purple", QC_URGENT_BREATHING, "airway"},
    {"something is stuck in her throat and she can't breathe", QC_URGENT_BREATHING, "airway"},
    {"宝宝喝奶呛到了，憋得脸发紫", QC_URGENT_BREATHING, "airway"},
    {"can't breathe properly, gasping for air, lips look blue", QC_URGENT_BREATHING, "breathing"},
    {"toddler breathing really fast and the skin between his ribs is sucking in", QC_URGENT_BREATHING, "breathing"},
    {"my asthma is really bad and the blue inhaler is doing nothing", QC_URGENT_BREATHING, "breathing"},
    {"喘不过气来，嘴唇发紫", QC_URGENT_BREATHING, "breathing"},
    {"哮喘犯了，说话都说不出来", QC_URGENT_BREATHING, "breathing"},
    {"blood is gushing from a cut on my wrist and won't stop", QC_URGENT_BLEEDING, "bleeding"},
    {"my dad on blood thinners is coughing up blood", QC_URGENT_BLEEDING, "bleeding"},
    {"I've been throwing up blood", QC_URGENT_BLEEDING, "bleeding"},
    {"手被刀割了很深，血一直往外涌", QC_URGENT_BLEEDING, "bleeding"},
    {"我爸吐了一大口血", QC_URGENT_BLEEDING, "bleeding"},
    {"car crash, hit my head on the window and I keep being sick and feel confused", QC_URGENT_EMERGENCY, "head_injury"},
    {"my son fell and banged his head, he's vomiting and very drowsy", QC_URGENT_EMERGENCY, "head_injury"},
    {"孩子摔到头以后吐了好几次，一直想睡", QC_URGENT_EMERGENCY, "head_injury"},
    {"my brother is having a fit and won't stop shaking", QC_URGENT_SEIZURE, "seizure"},
    {"she's convulsing on the floor", QC_URGENT_SEIZURE, "seizure"},
    {"我老公突然抽搐，叫他没反应", QC_URGENT_SEIZURE, "seizure"},
    {"孩子突然全身抽搐，口吐白沫", QC_URGENT_SEIZURE, "seizure"},
    {"my friend passed out and isn't responding", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"he's unconscious and breathing weird", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"我妈突然晕倒了，没有意识", QC_URGENT_UNCONSCIOUS, "unconscious"},
    {"I took 40 ibuprofen an hour ago", QC_URGENT_POISONING, "poisoning"},
    {"my mum has taken an overdose of her heart pills", QC_URGENT_POISONING, "poisoning"},
    {"my son drank bleach", QC_URGENT_POISONING, "poisoning"},
    {"swallowed a button battery", QC_URGENT_POISONING, "poisoning"},
    {"孩子吞了一颗纽扣电池", QC_URGENT_POISONING, "poisoning"},
    {"老人把一瓶降压药全吃了", QC_URGENT_POISONING, "poisoning"},
    {"type 1 and my ketones are 4.5, vomiting and tummy pain", QC_URGENT_EMERGENCY, "diabetic"},
    {"my diabetic husband is sweating and confused and won't wake properly", QC_URGENT_EMERGENCY, "diabetic"},
    {"糖尿病人低血糖，意识不清", QC_URGENT_EMERGENCY, "diabetic"},
    {"血糖仪显示HI，一直吐", QC_URGENT_EMERGENCY, "diabetic"},
    {"pregnant and bleeding a lot with clots", QC_URGENT_EMERGENCY, "pregnancy"},
    {"my waters have broken at 29 weeks", QC_URGENT_EMERGENCY, "pregnancy"},
    {"I think it's an ectopic, sharp pain on one side and I fainted", QC_URGENT_EMERGENCY, "pregnancy"},
    {"怀孕8周，一侧肚子剧痛，头晕", QC_URGENT_EMERGENCY, "pregnancy"},
    {"孕38周，突然看东西模糊，头痛得厉害", QC_URGENT_EMERGENCY, "pregnancy"},
    {"woke up with agony in my right testicle, it's swollen", QC_URGENT_EMERGENCY, "torsion"},
    {"我儿子蛋蛋突然很痛，肿起来了", QC_URGENT_EMERGENCY, "torsion"},
    {"my son got an electric shock and has burns on his hand", QC_URGENT_EMERGENCY, "burns"},
    {"hot oil all over her face, the skin is white", QC_URGENT_EMERGENCY, "burns"},
    {"胳膊被热油烫伤，起了大泡，皮都掉了", QC_URGENT_EMERGENCY, "burns"},
    {"heatwave here, my grandmother is confused and her skin is hot and dry", QC_URGENT_EMERGENCY, "heat"},
    {"我爸在太阳下晒了一天，现在意识不清", QC_URGENT_EMERGENCY, "heat"},
    {"found him in the snow, he's drowsy, slurring and not shivering", QC_URGENT_EMERGENCY, "hypothermia"},
    {"落水被救上来，身体冰冷，意识模糊", QC_URGENT_EMERGENCY, "hypothermia"},
    {"my 2 month old has a fever of 38.6", QC_URGENT_CHILD, "infant"},
    {"baby's soft spot is bulging and she's very sleepy", QC_URGENT_CHILD, "infant"},
    {"my newborn has gone floppy and isn't feeding", QC_URGENT_CHILD, "infant"},
    {"两个月的宝宝发烧38.5", QC_URGENT_CHILD, "infant"},
    {"宝宝囟门鼓起来了，一直哭", QC_URGENT_CHILD, "infant"},
    {"I'm going to overdose tonight, I have everything ready", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"I'm on the roof and going to jump", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"I want to end it all, I've got the pills here", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"i cant take it anymore i want to die", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我想自杀，已经准备好了", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"活不下去了，准备今晚吃药", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"我站在天台上，不想活了", QC_URGENT_SELF_HARM, "suicide_selfharm"},
    {"my husband is hitting me right now", QC_URGENT_ABUSE, "violence_abuse"},
    {"my stepfather has been abusing my sister", QC_URGENT_ABUSE, "violence_abuse"},
    {"someone is trying to break in and he has a gun", QC_URGENT_ABUSE, "violence_abuse"},
    {"我老公打我，还说要杀了我", QC_URGENT_ABUSE, "violence_abuse"},
    {"继父猥亵我女儿", QC_URGENT_ABUSE, "violence_abuse"},
    {"my stomach is rigid and the pain is unbearable", QC_URGENT_EMERGENCY, "other_acute"},
    {"can't control my bladder and my bum is numb after my back went", QC_URGENT_EMERGENCY, "other_acute"},
};

/* Messages that borrow the words of each presentation but are not urgent:
 * past, another person's past, questions, hypotheticals, mild, negated,
 * chronic, figurative, medication questions. */
static const char *const benign[] = {
    "my chest pain was checked last month and it was acid reflux, can I take gaviscon?",
    "is jaw pain a sign of a heart attack in women?",
    "she had a stroke three years ago and is doing well now",
    "what's the difference between a migraine and a thunderclap headache?",
    "I get a tension headache most afternoons at work",
    "my son had meningitis as a baby, is he at risk now?",
    "how do I do the glass test for a rash?",
    "I have a mild fever and a runny nose",
    "I'm allergic to penicillin, what else can I take?",
    "my tongue feels a bit sore after the dentist",
    "my son choked on water but coughed and is fine",
    "I get short of breath on the stairs since covid",
    "my inhaler works fine, I just need a new one",
    "small cut on my thumb, bled a little",
    "I'm on warfarin, can I drink alcohol?",
    "I bumped my head on a cupboard, no symptoms at all",
    "my epilepsy is well controlled, can I drive?",
    "I fainted once years ago when giving blood",
    "can I take 2 ibuprofen 200mg with paracetamol?",
    "I took 10mg of amlodipine this morning as usual",
    "how many paracetamol can a 10 year old take?",
    "my blood sugar was 7.8 after lunch, is that ok?",
    "type 1 diabetic, what's a good snack before exercise?",
    "I'm 12 weeks pregnant and feeling sick in the mornings",
    "pregnant and a bit of spotting last week, the scan was fine",
    "is it normal for one testicle to hang lower?",
    "burnt my finger on the oven, small blister",
    "it's so hot today, how much water should I drink?",
    "how cold does it have to be for hypothermia?",
    "my baby has a cold and a runny nose but is feeding well",
    "what temperature is a fever in a newborn?",
    "this exam is killing me lol",
    "I used to cut myself when I was 15, now I'm doing well",
    "my friend jumped off the diving board and hurt his ankle",
    "my ex used to hit me but I've been safe for years",
    "the news story about a stabbing upset me",
    "I have a hernia, when can I have the operation?",
    "my eyes are tired from the screen",
    "I can't talk to my family about my depression, please help me cope.",
    "bought some rope for the garden, can I get a tetanus jab?",
    "我爸以前心梗放过支架，现在恢复得很好",
    "中风的前兆有哪些？",
    "偏头痛老毛病了，吃点布洛芬就好",
    "孩子有点发烧，精神很好，还在玩",
    "我对青霉素过敏，能吃头孢吗？",
    "咳嗽两周了，没有发烧，也不喘",
    "切菜的时候割到手，流了点血，已经止住了",
    "吃华法林期间能喝酒吗？",
    "宝宝撞到桌角，起了个小包，玩得很开心",
    "我有癫痫，吃药控制得很好",
    "安眠药一次最多吃几片？",
    "血糖7.8正常吗？",
    "怀孕12周，早上有点恶心",
    "被开水溅到一点，有点红",
    "今天好热，要多喝水",
    "宝宝有点流鼻涕，吃奶正常",
    "我以前有过轻生的念头，现在好多了",
    "作业多得要死",
    "前夫以前打过我，现在离婚很多年了，很安全",
    "腰有点酸，没有麻木",
    "我媽去年中風，現在復健中",
    "寶寶有點咳嗽，精神很好",
    "打電話給我，謝謝醫生",
    /* a sixth batch: noses, devices, medication routines, mild hypos, known allergies */
    "i can't breathe through my nose with this cold, any tips?",
    "gasping for a cup of tea after that shift",
    "my teenager won't wake up for school, is that normal at 15?",
    "my laptop is unresponsive again, anyway can i book an appointment",
    "my left arm is weak after the gym yesterday",
    "the left side of my face is still numb from the dentist",
    "is there pesticide on supermarket vegetables?",
    "蔬菜上有农药残留吗？",
    "i'm worried i'll overdose if i take cold and flu tablets with paracetamol",
    "i take all my tablets in the morning, is that ok?",
    "i take a lot of medication for my heart, can i have grapefruit?",
    "my diabetic mum is confused about her new insulin pen",
    "my sugar dropped to 3.2 and i felt shaky, had jelly babies and it's 6 now",
    "cats make me wheezy, i've always been allergic",
    /* a seventh batch, with the texts the server and load tests send */
    "my heart races when i drink coffee",
    "i have palpitations sometimes, the ecg was normal",
    "i can't feel my toes when it's cold outside",
    "my tongue feels thick after the dentist",
    "what's the right way to use an epipen?",
    "my arm feels dead after sleeping on it",
    "he hit me with a pillow lol",
    "my stomach hurts after eating too fast",
    "burnt my hand a little on the kettle",
    "my sugar is high at 9, type 2, should i change my diet?",
    "I feel so anxious about my surgery tomorrow.",
    "Thank you, the new medicine is helping a lot!",
    "My back has been aching for two weeks, what should I do?",
    "Can I take ibuprofen together with my blood pressure pills?",
    "医生，我最近总是失眠，白天头疼，有点担心。",
    "今天心情不错，谢谢你们的照顾。",
    "我的孩子发烧三天了，我很着急。",
    "吃完药以后胃有点不舒服。",
    "我一个人住，常常觉得很孤单。",
    "我头疼了三天，有点担心",
    "我咳嗽一周了",
    "还有点发烧",
    "咳嗽两个月了，晚上更厉害",
    "我30岁，最近有点累",
    /* the eighth batch, Chinese */
    "我爸去年中风，现在在做康复",
    "胸口有点闷，可能是最近太累了",
    "孩子发烧38度，精神挺好",
    "吃了虾以后有点痒，没有别的不舒服",
    "宝宝吃奶的时候有点呛，咳几下就好了",
    "流鼻血了，按了五分钟就止住了",
    "孩子摔了一下，没磕到头，在玩",
    "我有癫痫，最近控制得很好",
    "安眠药吃多少片算过量？",
    "血糖高吃什么好？",
    "怀孕了有点恶心，正常吗？",
    "被热水烫了一下，有点红",
    "天太热了，有点头晕，喝点水就好了",
    "宝宝的囟门是软的，正常吗？",
    "以前想过自杀，现在已经好了",
    "他以前打过我，现在分开了",
    "肚子有点胀，可能吃多了",
    "看电视剧里有人跳楼，我吓了一跳",
    "我妈说要打我，开玩笑的",
    "累死了，今天工作好多",
    /* the ninth batch */
    "i've just started sertraline, is it normal to feel worse before better?",
    "my son has a nut allergy, we've had no reactions for years",
    "what do i do if my child swallows a battery?",
    "my wisdom tooth extraction site bled a bit last night but it's stopped",
    "i think i have food poisoning, been sick twice, keeping water down",
    "can i give calpol and nurofen together to my 3 year old?",
    "my grandad takes warfarin and has a small nosebleed that stopped after 10 minutes",
    "i have a small burn on my finger from the iron",
    "my testicles are itchy after the gym",
    "i had my appendix out last year",
    "my ex shouted at me on the phone, i'm upset but safe",
    "the film showed someone being strangled, it gave me nightmares",
    "my sugar is 12 after dinner, i'm type 2",
    "33 weeks and the baby has hiccups, is that normal?",
    /* the tenth batch */
    "my friend mentioned she's had dark days but she's getting help now",
    "i'm collecting stamps, anyway can i get a flu jab",
    "my partner and i argued last night but nobody got hurt",
    "my daughter drank some pool water, she seems fine",
    "how much paracetamol is too much in a day?",
    "bleeding a bit after my smear test, is that normal?",
    "my toddler swallowed a grape seed, he's fine",
    "my son is allergic to dogs, sneezes and itchy eyes",
    "is it normal to feel shaky when i haven't eaten?",
    "i'm 28 weeks pregnant and get heartburn at night",
    "i burned my tongue on hot soup",
    "my hernia aches a bit after work but goes back in",
    /* severe pain that is chronic or figurative */
    "my period pain is unbearable every month",
    "the wait at the clinic was agony lol",
    /* written Cantonese, benign */
    "我冇事，只係有啲攰",
    "佢之前中過風，而家好返好多",
    "唔該醫生，我食咗藥好多了",
    /* a fifth batch: hard negatives of every presentation (past, another person, questions, chronic, mild) */
    "my mum had a cardiac arrest in 2020 and was resuscitated, she has an ICD now. is it safe for her to use an induction hob?",
    "can anxiety cause chest pain and sweating? i get it before presentations but it goes after",
    "if i have chest pain should i chew an aspirin before the ambulance comes?",
    "my dad has angina, he gets chest tightness walking up hills, the GTN spray works in 2 minutes, need a refill",
    "my aunt had a stroke last month and can't move her left arm yet, what rehab is available?",
    "what does FAST stand for with strokes?",
    "my face felt numb after the dentist injection, it wore off after 3 hours",
    "my speech is slurred when i'm really tired, is that normal? doctor checked and said fine",
    "worst headache ever after a night out lol, hangover, any tips?",
    "i've had migraines since i was a teen, sudden onset with vomiting, sumatriptan usually works",
    "what causes a subarachnoid haemorrhage? my colleague had one",
    "my baby had a rash that faded with the glass test, the GP said it was viral",
    "does sepsis always cause a fever? asking for my nursing exam",
    "my grandad had sepsis last winter and spent a week in hospital, he's home now",
    "my neck has been stiff for a week after sleeping wrong, no fever, no headache",
    "i'm allergic to plasters, they make my skin itchy and red",
    "my son's lips swelled a bit after strawberries last year, the allergist said it was mild",
    "what's the right way to use an epipen? my daughter just got prescribed one",
    "hives on my arms for 3 days, no swelling of lips or tongue, breathing fine",
    "my husband choked on a crisp but coughed it up straight away, he's fine, just a sore throat now",
    "if a baby is choking do you do back blows or chest thrusts first?",
    "my dad's COPD is stable, he's on 2 litres of oxygen at home, can he travel on a plane?",
    "my sats are 96% on my pulse oximeter, is that ok with covid?",
    "my asthma flares when i have a cold, i use my blue inhaler 4 times a day and it helps",
    "short of breath after running for the bus, got better after a few minutes",
    "my period is heavier than usual this month, no dizziness, is that normal at 45?",
    "my nose bleeds a lot in winter because of the heating, they stop quickly",
    "i'm on warfarin and my INR was 3.1, the nurse changed my dose. do i need to avoid spinach?",
    "blood in my poo once last week, bright red on the paper, i have piles",
    "my son fell off his bike and hit his head yesterday, wore a helmet, no sickness, he's fine",
    "what signs of concussion should teachers look for after a head bump?",
    "my 2 year old bumps her head constantly, when should i worry?",
    "my daughter has epilepsy and had a seizure last night, it lasted 1 minute like always and she slept after",
    "what's the difference between a febrile convulsion and epilepsy?",
    "my friend had a fit at school years ago, is epilepsy hereditary?",
    "i passed out once at 16 when i had blood taken, never since",
    "sometimes i feel faint in hot showers, never actually fainted",
    "how much ibuprofen can i take for period pain? i weigh 60kg",
    "i accidentally took my blood pressure tablet twice this morning, i feel fine, amlodipine 5mg",
    "my toddler put a bit of toothpaste in her mouth, she spat it out",
    "we use a gas boiler, how often should the carbon monoxide detector be tested?",
    "how many units of alcohol is safe per week?",
    "my friend's son swallowed a coin last year and it came out naturally",
    "my blood sugar was 13 after a big dinner, type 2, i took my metformin",
    "what are the symptoms of a hypo? my son was just diagnosed type 1",
    "i had gestational diabetes in my last pregnancy, will i get it again?",
    "my sugar went low at 3.5 during the night, i had juice and it went back to 6",
    "i'm 20 weeks pregnant and get headaches sometimes, paracetamol helps, bp is normal",
    "what does pre-eclampsia feel like? my sister had it",
    "i had a miscarriage last year at 8 weeks, we're trying again, any advice?",
    "i'm 39 weeks and my waters haven't broken yet, when should i go in?",
    "my son's testicle was twisted 3 years ago and fixed with surgery, can it happen again?",
    "i have a varicocele, it aches after standing all day",
    "i got a small burn from a curling iron on my neck, red line, no blister",
    "my son touched the oven door and his fingertips are a bit red, he's playing happily",
    "i got sunburnt on holiday, peeling skin on my shoulders now",
    "is it dangerous to take the baby out in 30 degree heat?",
    "i felt dizzy in the sauna so i got out and drank water, fine now",
    "my hands go white and numb when it's cold, raynaud's",
    "my 4 month old has a blocked nose and a temp of 37.5, feeding fine",
    "my baby's poo is green after starting formula, is that normal?",
    "how often should a 2 week old feed?",
    "my newborn has yellowish eyes, the midwife said it's normal jaundice and checked her levels",
    "my teenage son watches videos about suicide, should i worry? he says he's fine",
    "how do i support my partner who self harmed in the past?",
    "i've had dark thoughts before but i've never acted on them and i'm seeing a counsellor",
    "a character in the book i'm reading takes an overdose, it upset me",
    "my sister's ex used to threaten her, she has a restraining order now and feels safe",
    "my neighbours argue loudly sometimes, should i call someone?",
    "i watched a film where a man stabbed someone and now i can't sleep",
    "my belly hurts a bit after eating spicy food",
    "i have a hernia, the surgeon said it's fine to wait for the operation",
    "my back hurts after lifting boxes, no numbness, no problems peeing",
    "my eye is a bit red and itchy, probably hay fever",
    "i've had constipation for 3 days, passing wind fine, no pain",
    "我爸去年心梗做了支架，现在能跑步吗？",
    "焦虑的时候会胸闷出汗，过一会就好了",
    "奶奶中风后遗症，左手还是没力气，有什么康复方法？",
    "偏头痛又犯了，跟以前一样，吃了药好多了",
    "孩子出疹子，压了会褪色，医生说是病毒疹",
    "我对海鲜过敏，吃了会起疹子，要带什么药？",
    "孩子吃饭噎了一下，咳出来就没事了",
    "哮喘控制得很好，偶尔用一下喷雾",
    "月经量有点多，没有头晕",
    "吃华法林，INR 2.5，正常吗？",
    "孩子摔了一跤，头上起了个包，没有呕吐，精神很好",
    "女儿有癫痫，昨晚发作了一分钟，跟平时一样",
    "不小心多吃了一片维生素，没事吧？",
    "血糖餐后12，二型糖尿病，正常吗？",
    "怀孕20周，偶尔头痛，血压正常",
    "被热水溅了一下，有点红，没起泡",
    "以前有过轻生的想法，现在在看心理医生，好多了",
    "他以前威胁过我，现在已经分开了，很安全",
    "小说里的人物自杀了，我看了很难过",
    /* the fourth batch: idioms and questions */
    "i could kill myself laughing at that video",
    "i want to die of embarrassment, i fell over in the canteen",
    "i hurt myself lifting weights at the gym, my shoulder is sore",
    "can you overdose on vitamin c?",
    "what happens if you take two paracetamol by mistake?",
    "how do i talk to my friend who mentioned suicide last year?",
    "my sister had a breakdown years ago, she's ok now",
    "跳楼价大甩卖，这个药便宜吗？",
    "跟他做个了断，我很难过但是想清楚了",
    "考完试就解脱了，好开心",
    "老板让我去死吧，开玩笑",
    "burnt toast smell in the kitchen, is that a stroke sign?",
    "i have a burning feeling when i pee",
    "my testicle has a small lump, no pain, had it for months",
    "my stomach has been bloated for weeks",
    "I had a nosebleed this morning that stopped after 5 minutes",
    "my son bit his lip and it bled a little",
    "blood test results came back fine",
    "my baby had a fit when she was born and is now 2 and fine",
    "the baby had a little vomit after feeding, she's fine",
    "my mum is on aspirin, can she take ibuprofen?",
    "i took my dose twice yesterday by mistake, it was vitamin d",
    "my grandma's dementia is getting worse, she forgets things",
    /* the third batch */
    "my dad was treated for a heart attack in march, what exercise can he do now",
    "sometimes my chest feels tight when i'm anxious before exams, it passes in a few minutes",
    "how do i know if my mum is having a stroke? she has high blood pressure",
    "my grandad's face has been a bit lopsided since his stroke in 2018, is physio still worth it",
    "had a bad headache all day after not drinking enough water, paracetamol helped",
    "my 3 year old has a temperature of 38.5 but is drinking and playing, rash fades with a glass",
    "what are the early signs of sepsis after surgery? having my knee done next month",
    "my daughter is allergic to eggs, can she have the flu vaccine?",
    "got stung by a bee yesterday, arm a bit swollen and itchy, no other symptoms",
    "my baby gags a bit when starting solids, is that normal?",
    "i've got a cold and a slightly blocked nose, breathing through my mouth at night",
    "my asthma plan says 10 puffs in an emergency, how often should i replace the spacer?",
    "cut my leg shaving, bled for a few minutes then stopped",
    "i'm on apixaban, can i take ibuprofen for my back?",
    "my son banged his head on the table yesterday, small bruise, acting totally normal",
    "my daughter had a febrile seizure last year, how do we prevent another?",
    "my friend fainted at the gym last week, she's fine now, should she see a doctor?",
    "how many ibuprofen can i take in 24 hours? is 6 ok?",
    "my 4 year old swallowed a small piece of crayon, he seems fine",
    "i take 60 units of insulin a day, can i reduce it if i lose weight?",
    "my sugar dropped to 3.8 after running, had a banana and felt better",
    "what causes ketones in urine in pregnancy? my test showed a trace",
    "27 weeks pregnant, baby moving loads, a bit of back ache, is that normal?",
    "i had spotting at 6 weeks last pregnancy and it was fine, how common is it?",
    "my son's testicle was sore after a football hit yesterday, it's fine today",
    "spilled hot tea on my hand, small red patch, no blisters",
    "we're going hiking in the heat, what signs of heatstroke should we watch for?",
    "my hands get cold and white in winter, is that raynauds?",
    "my 5 month old has a blocked nose and is feeding a bit less but still has wet nappies",
    "my baby's soft spot dips a little, is that normal?",
    "ive had depression for years, currently stable, just need a sick note",
    "my friend told me she self harmed in the past, how can i help her now",
    "i'm so tired of this cold, it's killing me",
    "my mum used to threaten us when we were kids, it still affects me",
    "my neighbour is always shouting at his dog, can i report it?",
    "i have a small umbilical hernia that pops out when i cough and goes back in",
    "woke up with a stiff neck from a bad pillow, no fever",
    "my 14 year old has acne, what cream is best?",
    "my husband snores and sometimes stops breathing for a few seconds at night, is that sleep apnoea?",
    "my dog ate some chocolate, is that dangerous? (for my vet)",
    "i accidentally took my evening tablets in the morning, is that ok?",
    "my toddler licked a bit of soap, she's fine",
    "the baby kicked me so hard lol",
    "i fell down the stairs last month and hurt my back, physio is helping",
    "my daughter's period is really heavy this month, soaking a pad every 3 hours",
    /* the second batch */
    "had chest pain last year, it was a pulled muscle",
    "what are the warning signs of a heart attack",
    "my dad's stroke was 5 years ago, he walks with a stick",
    "I get migraines with flashing lights every month",
    "is a stiff neck from sleeping funny anything to worry about",
    "had sepsis in 2019, recovered fully",
    "I have hay fever, my eyes are itchy",
    "I'm allergic to cats, I sneeze a lot",
    "my throat is a bit sore and scratchy",
    "I have asthma, the brown inhaler keeps it under control",
    "what should I do if someone is choking?",
    "nosebleed for 5 minutes, stopped on its own",
    "on warfarin and got a small bruise on my leg",
    "fell over and grazed my knee",
    "hit my head yesterday, mild headache today, no other symptoms",
    "my seizure meds make me tired",
    "I felt dizzy after standing up too fast",
    "how much paracetamol is safe in a day?",
    "my son swallowed a piece of gum",
    "I drank too much coffee and feel jittery",
    "my sugar was a bit high this morning, 9.2",
    "how do I treat a hypo?",
    "I'm pregnant, is it safe to eat cheese?",
    "I had an ectopic pregnancy two years ago",
    "my testicles itch",
    "sunburn on my shoulders, a bit red",
    "I feel cold all the time, is it my thyroid?",
    "my 6 month old has a slight temperature of 37.8 after jabs",
    "my baby sleeps a lot, is that normal?",
    "I've been feeling low lately, no thoughts of hurting myself",
    "I'd die for a pizza right now",
    "my friend overdosed years ago and is fine now",
    "my boss is going to kill me if I'm late again lol",
    "the bridge on my nose hurts from my glasses",
    "I'm writing a story about a man with a knife",
    "my stomach hurts after eating too much",
    "my back aches after gardening, no numbness",
    "去年胸口痛检查是胃病",
    "心梗有什么症状？",
    "头痛好几天了，不严重",
    "孩子出疹子，按压会褪色，精神好",
    "对花生过敏要注意什么？",
    "喉咙有点痛",
    "流鼻血五分钟就止住了",
    "吃了两片布洛芬头痛好多了",
    "宝宝喝奶有点呛，咳出来就好了",
    "孩子撞到头，没事，照常玩",
    "癫痫药吃了会困吗？",
    "血糖有点高，怎么控制饮食？",
    "怀孕了可以吃螃蟹吗？",
    "烫到手指，有点红",
    "天气太热了，没胃口",
    "心情不好，但是没有想伤害自己",
    "累死了，今天加班",
    "老板说要杀了我，开玩笑的",
    "肚子有点胀",
};

/* A negation inside the gap of a '~' phrase negates its later part. */
static const char *const gap_negated[] = {
    "her face isn't drooping, she is just tired",
    "his chest is not tight, only a tickly cough",
    "脸没歪，就是有点累",
    "嘴角没有歪，只是嘴唇干",
};

static void test_presentations(void) {
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++) {
        const pcase_t *c = &positive[i];
        qc_safety_result_t r = qc_safety_check(c->text, strlen(c->text));
        CHECK(r.kind == c->want && r.presentation && !strncmp(r.presentation, c->pres, strlen(c->pres)),
              "'%s': got %s %s (%s), want %s %s", c->text, qc_urgent_name(r.kind), r.presentation ? r.presentation : "-",
              r.term ? r.term : "-", qc_urgent_name(c->want), c->pres);
    }
    for (size_t i = 0; i < sizeof gap_negated / sizeof gap_negated[0]; i++) {
        qc_safety_result_t r = qc_safety_check(gap_negated[i], strlen(gap_negated[i]));
        CHECK(r.kind == QC_URGENT_NONE, "negated in the gap '%s' flagged as %s by '%s'", gap_negated[i],
              qc_urgent_name(r.kind), r.term ? r.term : "-");
    }
    for (size_t i = 0; i < sizeof benign / sizeof benign[0]; i++) {
        qc_safety_result_t r = qc_safety_check(benign[i], strlen(benign[i]));
        CHECK(r.kind == QC_URGENT_NONE, "benign '%s' flagged as %s %s by '%s'", benign[i], qc_urgent_name(r.kind),
              r.presentation ? r.presentation : "-", r.term ? r.term : "-");
    }
}

/* ==== notices ==== */

/* The notice of text under the rules and numbers of s. */
static void notice_of(const qc_safety_t *s, const char *text, char *buf, size_t cap) {
    qc_safety_result_t r = qc_safety_match(s, text, strlen(text));
    qc_safety_notice_for(s, &r, buf, cap);
}

static void test_notices(void) {
    char buf[2048], err[256];
    /* The message's language, and what to do for the kind. */
    notice_of(NULL, "I want to kill myself", buf, sizeof buf);
    CHECK(strstr(buf, "URGENT") && strstr(buf, "crisis line") && strstr(buf, "988") && !strstr(buf, "紧急"),
          "English self-harm notice: crisis line first: %s", buf);
    CHECK(strstr(buf, "crisis") < strstr(buf, "call 120"), "the crisis line comes before the emergency number");
    notice_of(NULL, "我不想活了", buf, sizeof buf);
    CHECK(strstr(buf, "紧急") && strstr(buf, "心理危机热线") && strstr(buf, "12356") && !strstr(buf, "URGENT"),
          "simplified Chinese self-harm notice: %s", buf);
    notice_of(NULL, "我不想活了，這個病好不了", buf, sizeof buf);
    CHECK(strstr(buf, "緊急") && strstr(buf, "心理危機專線"), "traditional Chinese notice: %s", buf);
    qc_safety_result_t r = qc_safety_check("我不想活了，這個病好不了", strlen("我不想活了，這個病好不了"));
    CHECK(!strcmp(r.lang, "zh-Hant"), "traditional text is zh-Hant: %s", r.lang);
    r = qc_safety_check("我不想活了", strlen("我不想活了"));
    CHECK(!strcmp(r.lang, "zh-Hans"), "simplified text is zh-Hans: %s", r.lang);
    r = qc_safety_check("我唔想再撐落去，已經食晒啲藥", strlen("我唔想再撐落去，已經食晒啲藥"));
    CHECK(r.kind == QC_URGENT_SELF_HARM && !strcmp(r.lang, "zh-Hant"), "written Cantonese in traditional script: %s %s",
          qc_urgent_name(r.kind), r.lang);
    notice_of(NULL, "my dad has crushing chest pain and is sweating", buf, sizeof buf);
    CHECK(strstr(buf, "URGENT") && strstr(buf, "emergency") && strstr(buf, "120 (China), 911 (US)") &&
              !strstr(buf, "child"),
          "emergency notice with the default numbers: %s", buf);
    notice_of(NULL, "my son is choking on a grape and can't breathe", buf, sizeof buf);
    CHECK(strstr(buf, "A child can get worse quickly"), "a child's emergency says so: %s", buf);
    notice_of(NULL, "my newborn is floppy and won't feed", buf, sizeof buf);
    CHECK(strstr(buf, "baby or child"), "infant danger signs: %s", buf);
    notice_of(NULL, "宝宝软绵绵的，不吃奶", buf, sizeof buf);
    CHECK(strstr(buf, "宝宝或孩子") && strstr(buf, "儿科急诊"), "infant notice in Chinese: %s", buf);
    notice_of(NULL, "I took 30 paracetamol an hour ago", buf, sizeof buf);
    CHECK(strstr(buf, "poisoning") && !strstr(buf, "poison centre now"), "no poison centre without a region: %s", buf);
    notice_of(NULL, "he has a knife and says he'll kill me", buf, sizeof buf);
    CHECK(strstr(buf, "police") && strstr(buf, "safe place"), "abuse notice: the police, a safe place: %s", buf);
    /* The model's opinion (kind unknown): the emergency number and the crisis line, in the message's language. */
    CHECK(!strcmp(qc_urgent_name(QC_URGENT_MODEL), "model"), "QC_URGENT_MODEL is named model");
    static const struct {
        const char *lang, *want[3];
    } model_notices[] = {
        {"en", {"URGENT", "120 (China)", "crisis line"}},
        {"zh-Hans", {"紧急", "急救电话", "心理危机热线"}},
        {"zh-Hant", {"緊急", "急救電話", "心理危機專線"}},
    };
    for (size_t i = 0; i < sizeof model_notices / sizeof model_notices[0]; i++) {
        qc_safety_result_t m = {.kind = QC_URGENT_MODEL, .lang = model_notices[i].lang};
        size_t len = qc_safety_notice_for(NULL, &m, buf, sizeof buf);
        CHECK(len > 0 && len < sizeof buf && strstr(buf, "12356"), "model notice (%s) has the crisis lines: %s",
              model_notices[i].lang, buf);
        for (int k = 0; k < 3; k++)
            CHECK(strstr(buf, model_notices[i].want[k]), "model notice (%s): no '%s' in %s", model_notices[i].lang,
                  model_notices[i].want[k], buf);
    }
    qc_safety_notice(QC_URGENT_MODEL, NULL, buf, sizeof buf);
    CHECK(strstr(buf, "紧急 / URGENT") && strstr(buf, "crisis line") && strstr(buf, "心理危机热线"),
          "the bilingual model notice has both: %s", buf);
    /* Regions and overrides. */
    static const struct {
        const char *region, *text, *want[3];
    } regions[] = {
        {"US", "I took 30 paracetamol an hour ago", {"911", "1-800-222-1222", "poison centre"}},
        {"US", "I want to kill myself", {"988", "911", NULL}},
        {"US", "my husband is strangling me", {"911", "1-800-799-7233", NULL}},
        {"UK", "I want to kill myself", {"Samaritans 116 123", "999", NULL}},
        {"UK", "I took 30 paracetamol an hour ago", {"999", "NHS 111", NULL}},
        {"CN", "我爸胸口剧烈疼痛，还出冷汗", {"120", "急诊", NULL}},
        {"CN", "我不想活了", {"12356", "120", NULL}},
        {"CN", "老公拿着刀要杀了我", {"110", "12338", NULL}},
        {"HK", "我唔想活，我不想活了", {"2389 2222", "999", NULL}},
        {"TW", "孩子誤喝了洗潔精", {"119", "02-2871-7121", "毒物"}},
        {"TW", "我不想活了，這個病好不了", {"1925", "119", NULL}},
        {"EU", "my dad has crushing chest pain and is sweating", {"112", NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++) {
        qc_safety_config_t cfg = {.region = regions[i].region};
        qc_safety_t *s = NULL;
        CHECK(!qc_safety_new(&cfg, &s, err, sizeof err), "region %s: %s", regions[i].region, err);
        if (!s) continue;
        notice_of(s, regions[i].text, buf, sizeof buf);
        for (int k = 0; k < 3 && regions[i].want[k]; k++)
            CHECK(strstr(buf, regions[i].want[k]), "region %s, '%s': no '%s' in %s", regions[i].region, regions[i].text,
                  regions[i].want[k], buf);
        qc_safety_free(s);
    }
    qc_safety_config_t cfg = {.region = "uk", .numbers = "emergency=112, crisis=Shout 85258, text SHOUT, poison=NPIS 0344 892 0111"};
    qc_safety_t *s = NULL;
    CHECK(!qc_safety_new(&cfg, &s, err, sizeof err) && s, "region and overrides: %s", err);
    if (s) {
        notice_of(s, "I want to kill myself", buf, sizeof buf);
        CHECK(strstr(buf, "Shout 85258, text SHOUT") && strstr(buf, "call 112"), "overrides (a comma inside a value): %s", buf);
        notice_of(s, "my husband is strangling me", buf, sizeof buf);
        CHECK(strstr(buf, "999") && strstr(buf, "0808 2000 247"), "the region's numbers not overridden stay: %s", buf);
        /* qc_safety_use: the set's numbers in the older notice too */
        qc_safety_use(s);
        qc_safety_notice(QC_URGENT_CARDIAC, NULL, buf, sizeof buf);
        CHECK(strstr(buf, "112") && !strstr(buf, "120"), "the older notice uses the set in use: %s", buf);
        qc_safety_use(NULL);
        qc_safety_free(s);
    }
    static const struct {
        const char *region, *numbers, *want;
    } bad[] = {{"FR", NULL, "unknown region 'FR'"},
               {NULL, "ambulance=120", "'ambulance=120' is not KEY=NUMBER"},
               {NULL, "emergency=", "emergency= has no number"},
               {NULL, "120", "'120' is not KEY=NUMBER"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg = (qc_safety_config_t){.region = bad[i].region, .numbers = bad[i].numbers};
        s = NULL;
        qc_status st = qc_safety_new(&cfg, &s, err, sizeof err);
        CHECK(st == QC_ERR_ARG && !s && strstr(err, bad[i].want), "bad numbers %zu: %d '%s'", i, st, err);
        qc_safety_free(s);
    }
    /* Truncation: terminated, the needed length returned. */
    char small[24];
    r = qc_safety_check("my son is choking on a grape and can't breathe", 46);
    size_t need = qc_safety_notice_for(NULL, &r, small, sizeof small);
    CHECK(need > sizeof small && strlen(small) < sizeof small, "a truncated notice is terminated (%zu)", need);
    CHECK(qc_safety_notice_for(NULL, &r, buf, sizeof buf) == need && strlen(buf) == need, "the length it needs");
    r = qc_safety_check("hello", 5);
    CHECK(qc_safety_notice_for(NULL, &r, buf, sizeof buf) == 0 && !buf[0], "no notice when not urgent");
}

/* ==== the labelled sets ==== */

typedef struct {
    int urgent, caught, calm, alarms, same_category;
} tally_t;

/* Runs the rules on every line of a JSONL set ({text, urgent, category}) and
 * prints recall, false alarms and category agreement. -1 when the file
 * cannot be read or a line is malformed. */
static int measure(const char *path, tally_t *t) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int bad = 0;
    *t = (tally_t){0};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n') continue;
        json_t *j = json_loads(line, 0, NULL);
        const char *text = j ? json_string_value(json_object_get(j, "text")) : NULL;
        const char *category = j ? json_string_value(json_object_get(j, "category")) : NULL;
        json_t *urgent = j ? json_object_get(j, "urgent") : NULL;
        if (!text || !category || !json_is_boolean(urgent)) {
            bad = 1;
            json_decref(j);
            continue;
        }
        qc_safety_result_t r = qc_safety_check(text, strlen(text));
        if (json_is_true(urgent)) {
            t->urgent++;
            if (r.kind) {
                t->caught++;
                t->same_category += !strcmp(qc_urgent_name(r.kind), category);
            } else {
                printf("  missed (%s): %s\n", category, text);
            }
        } else {
            t->calm++;
            if (r.kind) {
                t->alarms++;
                printf("  false alarm (%s by '%s'): %s\n", qc_urgent_name(r.kind), r.term ? r.term : "-", text);
            }
        }
        json_decref(j);
    }
    fclose(f);
    printf("%s: recall %d/%d = %.1f%%, false alarms %d/%d = %.1f%%, category agrees on %d/%d caught\n", path,
           t->caught, t->urgent, t->urgent ? 100.0 * t->caught / t->urgent : 0.0, t->alarms, t->calm,
           t->calm ? 100.0 * t->alarms / t->calm : 0.0, t->same_category, t->caught);
    return bad ? -1 : 0;
}

/* The presentation groups a case of tests/data/safety-cases.jsonl may be
 * caught under: its own ("cardiac" for cardiac.*), or the neighbours the
 * same words lead to (a choking child is airway.*, a head injury on a blood
 * thinner bleeding.anticoagulant, a baby's fit seizure.child). */
static int same_group(const char *want, const char *got) {
    static const char *const alias[][2] = {
        {"breathing", "airway."},          {"head_injury", "bleeding.anticoagulant"},
        {"infant", "seizure.child"},       {"bleeding", "bleeding."},
        {"poisoning", "suicide_selfharm."}, {"seizure", "pregnancy.pre_eclampsia"},
        {"breathing", "anaphylaxis."},     /* a swelling tongue on a new pill: the allergy notice */
        {"breathing", "cardiac."},         /* sudden chest pain and breathlessness read as cardiac first */
        {"hypothermia", "stroke."},        /* cold and slurring: the speech rule, the same notice */
        {"seizure", "breathing."},         /* shaking with blue lips: the breathing rule, the same notice */
        {"heat", "sepsis_meningitis."}, /* hot and confused: fever with confusion, the same notice */
    };
    size_t n = strlen(want);
    if (!strncmp(got, want, n) && got[n] == '.') return 1;
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcmp(want, alias[i][0]) && !strncmp(got, alias[i][1], strlen(alias[i][1]))) return 1;
    return 0;
}

/* tests/data/safety-cases.jsonl: my own cases, written from the list of
 * presentations (not from any evaluation set): the lay ways a patient, a
 * parent or a partner says each key sign, and hard negatives that borrow
 * its words. Every urgent one caught under its presentation group, no
 * other one flagged. */
static void test_cases_file(void) {
    const char *path = "tests/data/safety-cases.jsonl";
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "%s: readable", path);
    if (!f) return;
    char line[8192];
    int urgent = 0, calm = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *text = j ? json_string_value(json_object_get(j, "text")) : NULL;
        const char *pres = j ? json_string_value(json_object_get(j, "presentation")) : NULL;
        json_t *u = j ? json_object_get(j, "urgent") : NULL;
        if (!text || !pres || !json_is_boolean(u)) {
            bad++;
            json_decref(j);
            continue;
        }
        qc_safety_result_t r = qc_safety_check(text, strlen(text));
        if (json_is_true(u)) {
            urgent++;
            CHECK(r.kind != QC_URGENT_NONE && r.presentation && same_group(pres, r.presentation),
                  "case '%s' (%s): got %s %s (%s)", text, pres, qc_urgent_name(r.kind),
                  r.presentation ? r.presentation : "-", r.term ? r.term : "-");
        } else {
            calm++;
            CHECK(r.kind == QC_URGENT_NONE, "case '%s' (%s, not urgent) flagged as %s %s by '%s'", text, pres,
                  qc_urgent_name(r.kind), r.presentation ? r.presentation : "-", r.term ? r.term : "-");
        }
        json_decref(j);
    }
    fclose(f);
    CHECK(!bad && urgent >= 250 && calm >= 150, "%s: %d malformed lines, %d urgent, %d not urgent", path, bad, urgent,
          calm);
}

/* The issue's bar: recall >= 95 %, false alarms <= 5 %. */
static void check_bar(const char *path) {
    tally_t t;
    int rc = measure(path, &t);
    CHECK(rc == 0 && t.urgent > 0 && t.calm > 0, "%s: readable, well-formed, both kinds of message", path);
    CHECK(t.urgent && (double)t.caught / t.urgent >= 0.95, "%s: recall %d/%d below 95%%", path, t.caught, t.urgent);
    CHECK(t.calm && (double)t.alarms / t.calm <= 0.05, "%s: false alarms %d/%d above 5%%", path, t.alarms, t.calm);
}

/* ==== how text is read ==== */

/* Spellings people type: each must read as the plain message does. */
static const case_t spellings[] = {
    {"I want to k i l l myself", QC_URGENT_SELF_HARM},             /* letters spelled out */
    {"thinking about s.u.i.c.i.d.e every night", QC_URGENT_SELF_HARM},
    {"i want to k-i-l-l myself", QC_URGENT_SELF_HARM},
    {"been feeling su1c1dal all week", QC_URGENT_SELF_HARM},       /* digits for letters */
    {"i will k1ll mys3lf", QC_URGENT_SELF_HARM},
    {"i want to killmyself", QC_URGENT_SELF_HARM},                 /* run together */
    {"chestpain and sweating, left arm numb", QC_URGENT_CARDIAC},
    {"chest\xe2\x80\x8b pain and sweat\xe2\x80\x8cing", QC_URGENT_CARDIAC}, /* zero-width space and non-joiner */
    {"kill\xc2\xadmyself", QC_URGENT_SELF_HARM},                   /* soft hyphen */
    {"\xef\xbb\xbfI want to end my life", QC_URGENT_SELF_HARM},    /* byte order mark */
    {"my self\xe2\x80\x90harm is getting worse, cutting again tonight", QC_URGENT_SELF_HARM}, /* U+2010 hyphen */
    {"I ＣＡＮ＇Ｔ ＢＲＥＡＴＨＥ", QC_URGENT_BREATHING},                 /* full width */
    {"我想 自 杀", QC_URGENT_SELF_HARM},                            /* Chinese typed apart */
    {"我 不 想 活 了", QC_URGENT_SELF_HARM},
    {"自\xe2\x80\x8b杀", QC_URGENT_SELF_HARM},
    {"想自杀\xef\xb8\x8f", QC_URGENT_SELF_HARM},                    /* a variation selector */
};

/* Normalized forms: what must change and what must survive. */
static const struct {
    const char *in, *out;
} norms[] = {
    {"took 30 tablets of 500mg", "took 30 tablets of 500mg"},
    {"从10楼跳下去", "从10楼跳下去"},
    {"B12 and COVID19 and HbA1c", "b12 and covid19 and hbaic"},
    {"k1ll 0verdose $uicide", "kill overdose suicide"},
    {"a 5-year-old, self_harm", "a 5 year old, self harm"},
    {"10-15 pills", "10-15 pills"},
    {"c h e s t pain", "chest pain"},
    {"a b c", "abc"},
    {"a b", "a b"},
    {"I can't, I cannot", "i cant, i cant"},
    {"e.g. this", "e.g. this"},
    {"女儿抽风了 怎么办", "女儿抽风了 怎么办"},
    {"我 想 死", "我想死"},
    {"Ｃｈｅｓｔ　ｐａｉｎ", "chest pain"},
    {"zero\xe2\x80\x8bwidth", "zerowidth"},
};

static void test_text(void) {
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        qc_safety_result_t r = qc_safety_check(spellings[i].text, strlen(spellings[i].text));
        CHECK(r.kind == spellings[i].want, "spelling '%s': got %s, want %s", spellings[i].text, qc_urgent_name(r.kind),
              qc_urgent_name(spellings[i].want));
    }
    for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
        size_t n;
        char *t = sf_normalize(qc_safety_current(), norms[i].in, strlen(norms[i].in), &n);
        CHECK(t && !strcmp(t, norms[i].out) && n == strlen(t), "normalize '%s' = '%s', want '%s'", norms[i].in,
              t ? t : "(null)", norms[i].out);
        free(t);
    }
    /* Numbers: digits, Chinese numerals and words, with their ends. */
    static const struct {
        const char *t;
        long v;
        size_t end;
    } nums[] = {{"30 tablets", 30, 2}, {"1,000mg", 1000, 5}, {"2.5 mg", 2, 3}, {"三十片", 30, 6}, {"二十五粒", 25, 9},
                {"一百片", 100, 6}, {"十几片", 13, 6}, {"几十片", 30, 6}, {"20多片", 20, 5}, {"两瓶", 2, 3},
                {"thirty pills", 30, 6}, {"twenty five", 25, 11}, {"a dozen", -1, 0}, {"pills", -1, 0}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        size_t end = 0;
        long v = sf_number_at(nums[i].t, strlen(nums[i].t), 0, &end);
        CHECK(v == nums[i].v && (v < 0 || end == nums[i].end), "number '%s' = %ld (end %zu), want %ld (%zu)", nums[i].t, v,
              end, nums[i].v, nums[i].end);
    }
    size_t end;
    CHECK(sf_number_at("1500", 4, 1, &end) == -1, "no number inside a number");
}

/* ==== the rules file ==== */

/* Malformed rules files: each is refused with its line and the reason. */
static const struct {
    const char *text, *want; /* want: a piece of the error message */
} bad_rules[] = {
    {"", "empty"},
    {"# only a comment\n", "empty"},
    {"group x\n    a\n", "rules:1: not a rules file"},
    {"qcare-safety-rules 2\n", "rules:1: only version 1"},
    {"qcare-safety-rules 1\n    a | b\n", "rules:2: an indented line outside any statement"},
    {"qcare-safety-rules 1\nfrobnicate x\n", "rules:2: unknown statement 'frobnicate'"},
    {"qcare-safety-rules 1\ngroup\n", "rules:2: 'group' needs a name"},
    {"qcare-safety-rules 1\ngroup a b\n", "rules:2: 'group a' takes one name"},
    {"qcare-safety-rules 1\ngroup a/b\n", "rules:2: 'a/b': a name has only"},
    {"qcare-safety-rules 1\ngroup g\n    a || b\n", "rules:3: an empty phrase"},
    {"qcare-safety-rules 1\ngroup g\n    | |\n", "rules:3: an empty phrase"},
    {"qcare-safety-rules 1\ngroup g\n    a~~b\n", "rules:3: a phrase has an empty part"},
    {"qcare-safety-rules 1\ngroup g\n    a~b~c~d~e\n", "rules:3: a phrase has more than 4 parts"},
    {"qcare-safety-rules 1\ngroup g\n    al*ergy\n", "rules:3: '*' may not stand inside"},
    {"qcare-safety-rules 1\ngroup g\n    {n>=x} pills\n", "rules:3: a number token"},
    {"qcare-safety-rules 1\ngroup g\n    {n<3} pills\n", "rules:3: a number token"},
    {"qcare-safety-rules 1\ngroup g\n    @nothing\n", "rules:3: @nothing: no such group"},
    {"qcare-safety-rules 1\ngroup g\n    aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "rules:3: a phrase part is longer"},
    {"qcare-safety-rules 1\ngroup g\n    \xff\xfe\n", "rules:3: not valid UTF-8"},
    {"qcare-safety-rules 1\ncue later\n    a\n", "rules:2: unknown cue list 'later'"},
    {"qcare-safety-rules 1\ncompound\n    blood test\n", "rules:3: a compound is written A + B"},
    {"qcare-safety-rules 1\nfold\n    殺杀\n", "rules:3: a fold is written X=Y"},
    {"qcare-safety-rules 1\nfold\n    a=b\n", "rules:3: a fold maps a non-ASCII"},
    {"qcare-safety-rules 1\nfold slang\n    冇=没\n", "rules:2: 'fold' takes no name (only `fold dialect`)"},
    {"qcare-safety-rules 1\nsource s\n    A text.\nsource s\n    Again.\n", "rules:4: source 's' is defined twice"},
    {"qcare-safety-rules 1\nsource s\n", "rules:2: source 's' has no text"},
    {"qcare-safety-rules 1\npresentation p\n    kind cardiac\n", "rules:2: presentation 'p' has no 'source'"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    source s\n", "rules:4: presentation 'p' has no 'kind'"},
    {"qcare-safety-rules 1\npresentation p\n    source nowhere\n", "rules:3: unknown source 'nowhere'"},
    {"qcare-safety-rules 1\npresentation p\n    kind sadness\n", "rules:3: 'kind' takes one notice kind"},
    /* the model's opinion is never a rule's kind */
    {"qcare-safety-rules 1\npresentation p\n    kind model\n", "rules:3: 'kind' takes one notice kind"},
    {"qcare-safety-rules 1\npresentation p\n    colour red\n", "rules:3: unknown presentation field 'colour'"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\nrule p\n    cosign g\n",
     "rules:8: 'cosign' before the rule's 'trigger'"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\nrule p\n    lang fr\n",
     "rules:8: unknown language 'fr'"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\nrule p\n    context soon\n",
     "rules:8: unknown context 'soon'"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\nrule p\n    trigger a b\n",
     "rules:8: 'trigger' takes GROUP or GROUP with GROUP"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\nrule p\n    trigger g\n",
     "rules:8: unknown group 'g'"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\nrule p\n    unless g\n",
     "rules:7: a rule needs a 'trigger'"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\ngroup g\n    a\nrule q\n"
     "    trigger g\n", "rules:9: unknown presentation 'q'"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\ngroup g\n    a\nrule p\n"
     "    trigger g\n    trigger g\n", "rules:11: a rule has one trigger"},
    {"qcare-safety-rules 1\nsource s\n    T.\npresentation p\n    kind cardiac\n    source s\n", "rules: no rules"},
    {"qcare-safety-rules 1\ngroup g\n    a\nuse builtin\n", "rules:4: 'use builtin' must come right after"},
};

/* A small valid file: its own rule, or the built-in rules extended. */
static const char good_rules[] =
    "qcare-safety-rules 1\n"
    "# a clinic's own rule\n"
    "source clinic\n"
    "    Our clinic's protocol, 2026.\n"
    "presentation clinic.purple\n"
    "    kind emergency\n"
    "    source clinic\n"
    "    title Zebra stripes with fever\n"
    "group purple\n"
    "    zebra stripe* | 斑马纹\n"
    "group fever\n"
    "    fever | 发烧\n"
    "cue negation\n"
    "    no\n"
    "rule clinic.purple\n"
    "    trigger purple with fever\n";

static void test_rules_file(void) {
    char err[512];
    qc_safety_t *s = NULL;
    for (size_t i = 0; i < sizeof bad_rules / sizeof bad_rules[0]; i++) {
        qc_safety_config_t cfg = {.rules_text = bad_rules[i].text, .rules_len = strlen(bad_rules[i].text),
                                  .lexicon_path = "off"};
        err[0] = 0;
        qc_status st = qc_safety_new(&cfg, &s, err, sizeof err);
        CHECK(st != 0 && !s && strstr(err, bad_rules[i].want), "bad rules %zu: status %d, '%s' (want '%s')", i, st, err,
              bad_rules[i].want);
        qc_safety_free(s);
        s = NULL;
    }
    qc_safety_config_t cfg = {.rules_text = good_rules, .rules_len = strlen(good_rules), .lexicon_path = "off"};
    CHECK(!qc_safety_new(&cfg, &s, err, sizeof err) && s && qc_safety_rule_count(s) == 1, "a small rules file: %s", err);
    if (s) {
        qc_safety_result_t r = qc_safety_match(s, "zebra stripes and a high fever", 30);
        CHECK(r.kind == QC_URGENT_EMERGENCY && r.presentation && !strcmp(r.presentation, "clinic.purple") &&
                  r.term && !strcmp(r.term, "zebra stripe*"),
              "own rule: %s %s", qc_urgent_name(r.kind), r.presentation ? r.presentation : "-");
        CHECK(qc_safety_match(s, "no zebra stripes, a fever", 25).kind == QC_URGENT_NONE, "own negation cue");
        CHECK(qc_safety_match(s, "I want to kill myself", 21).kind == QC_URGENT_NONE, "own rules alone");
        qc_safety_free(s);
        s = NULL;
    }
    /* use builtin: the compiled-in rules, then the file's. */
    char ext[2048];
    snprintf(ext, sizeof ext, "qcare-safety-rules 1\nuse builtin\n%s", good_rules + strlen("qcare-safety-rules 1\n"));
    cfg = (qc_safety_config_t){.rules_text = ext, .rules_len = strlen(ext), .rules_path = "ext.txt", .lexicon_path = "off"};
    CHECK(!qc_safety_new(&cfg, &s, err, sizeof err) && s, "use builtin: %s", err);
    if (s) {
        CHECK(qc_safety_rule_count(s) == qc_safety_rule_count(qc_safety_current()) + 1, "builtin + 1 rule");
        CHECK(qc_safety_match(s, "zebra stripes and a fever", 25).kind == QC_URGENT_EMERGENCY, "extended: own rule");
        CHECK(qc_safety_match(s, "I want to kill myself", 21).kind == QC_URGENT_SELF_HARM, "extended: builtin rule");
        qc_safety_use(s);
        CHECK(qc_safety_check("zebra stripes and a fever", 25).kind == QC_URGENT_EMERGENCY, "qc_safety_use");
        qc_safety_use(NULL);
        CHECK(qc_safety_current() != s && qc_safety_rule_count(qc_safety_current()) + 1 == qc_safety_rule_count(s),
              "back to the builtin rules");
        qc_safety_use(rules_only);
        qc_safety_free(s);
        s = NULL;
    }
    /* A fold of the file that clashes with one of the built-in rules (廁=厕
     * there): the file's error, under its name (it was "builtin rules:"). */
    static const char clash[] = "qcare-safety-rules 1\nuse builtin\nfold\n    \xe5\xbb\x81=\xe5\x8f\x95\n";
    cfg = (qc_safety_config_t){.rules_text = clash, .rules_len = strlen(clash), .rules_path = "clash.txt"};
    err[0] = 0;
    CHECK(qc_safety_new(&cfg, &s, err, sizeof err) == QC_ERR_FORMAT && !s && !strncmp(err, "clash.txt: ", 11) &&
              strstr(err, "folded two ways (U+5EC1)"),
          "a fold clashing with the built-in rules: '%s'", err);
    qc_safety_free(s);
    s = NULL;
    /* The file compiled in is data/safety-rules.txt: loading it gives the same set. */
    cfg = (qc_safety_config_t){.rules_path = "data/safety-rules.txt"};
    CHECK(!qc_safety_new(&cfg, &s, err, sizeof err) && s &&
              qc_safety_rule_count(s) == qc_safety_rule_count(qc_safety_current()),
          "data/safety-rules.txt loads: %s", err);
    qc_safety_free(s);
    s = NULL;
    cfg = (qc_safety_config_t){.rules_path = "/nonexistent/rules.txt"};
    CHECK(qc_safety_new(&cfg, &s, err, sizeof err) == QC_ERR_IO && strstr(err, "/nonexistent/rules.txt"), "missing file: %s",
          err);
    cfg = (qc_safety_config_t){.rules_path = "/dev/zero"};
    CHECK(qc_safety_new(&cfg, &s, err, sizeof err) == QC_ERR_IO && strstr(err, "not a regular file"), "a device: %s", err);
    /* A fold that makes a character longer (2 bytes to 4) on a long text. */
    static const char grow_rules[] = "qcare-safety-rules 1\nfold\n    \xc3\xa9=\xf0\xa0\x80\x80\n"
                                     "source s\n    T.\npresentation p\n    kind emergency\n    source s\n"
                                     "group g\n    \xf0\xa0\x80\x80\xf0\xa0\x80\x80\xf0\xa0\x80\x80\nrule p\n    trigger g\n";
    cfg = (qc_safety_config_t){.rules_text = grow_rules, .rules_len = strlen(grow_rules)};
    CHECK(!qc_safety_new(&cfg, &s, err, sizeof err) && s, "a growing fold: %s", err);
    if (s) {
        char text[401];
        for (int i = 0; i < 200; i++) text[2 * i] = (char)0xc3, text[2 * i + 1] = (char)0xa9;
        text[400] = 0;
        CHECK(qc_safety_match(s, text, 400).kind == QC_URGENT_EMERGENCY, "folded text that grows is matched");
        qc_safety_free(s);
        s = NULL;
    }
    qc_safety_free(NULL);
}


/* ==== the second reader ==== */

/* path of a fresh temporary file holding text (static buffer). */
static const char *temp_file(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/qc_lex_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return "/nonexistent";
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static const struct {
    const char *text, *want;
} bad_lex[] = {
    {"", "missing"},
    {"threshold 0.5\n", ":1: expected \"qcare-safety-lex 1\" first"},
    {"qcare-safety-lex 2\n", "format version 2"},
    {"qcare-safety-lex 1\nthreshold 1.5\n", ":2: threshold"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none zebra\n", ":3: unknown class 'zebra'"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses stroke none\n", ":3: \"none\" must be the first"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none\n", ":3: classes: \"none\" and at least one"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 1\n", ":4: bias: 2 numbers"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 1 2 3\n", ":4: bias: 2 numbers"},
    {"qcare-safety-lex 1\nthreshold 0.5\nf\t1|a\t1:1\n", ":3: a feature before classes"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 0 0\nf\t1|a\t2:1\n", ":5: K:W with K a class"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 0 0\nf\t1|a\t1:x\n", ":5: K:W: a weight"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 0 0\nf\t1|a\t1:nan\n", ":5: K:W: a weight"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 0 0\nf\t1|a\t1:", ":5: K:W: a weight"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 0 0\nf\t1|a\t1:\n0.5\n", ":5: K:W: a weight"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 0 0\nf\t1|a\t1:1\nf\t1|a\t1:2\n", ":6: feature given twice"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 0 0\nf\t1|a 1:1\n", ":5: f<TAB>FEATURE"},
    {"qcare-safety-lex 1\nthreshold 0.5\nclasses none stroke\nbias 0 0\nweights 1\n", ":5: unknown statement"},
    {"qcare-safety-lex 1\nclasses none stroke\nbias 0 0\n", "threshold missing"},
};

/* One feature, "zebra", that makes a message self-harm. */
static const char tiny_lex[] = "qcare-safety-lex 1\n# a comment\nthreshold 0.5\nclasses none self-harm\nbias 0 -3\n"
                               "f\t1|zebra\t1:6\nf\tp|giraf\t0:0.5\n";

/* n bytes of routine text no rule and no weight of tiny_lex knows, then
 * tail, in a fresh string. */
static char *padded(size_t n, const char *tail) {
    static const char filler[] = "the appointment is on tuesday at the second floor. ";
    size_t k = strlen(tail);
    char *t = malloc(n + k + 1);
    if (!t) return NULL;
    for (size_t i = 0; i < n; i++) t[i] = filler[i % (sizeof filler - 1)];
    if (n) t[n - 1] = ' '; /* the tail is a word of its own */
    memcpy(t + n, tail, k + 1);
    return t;
}

static void test_lexicon(void) {
    char err[512];
    qc_safety_t *s = NULL;
    for (size_t i = 0; i < sizeof bad_lex / sizeof bad_lex[0]; i++) {
        const char *path = temp_file(bad_lex[i].text);
        qc_safety_config_t cfg = {.lexicon_path = path};
        err[0] = 0;
        qc_status st = qc_safety_new(&cfg, &s, err, sizeof err);
        CHECK(st != 0 && !s && strstr(err, bad_lex[i].want) && !strncmp(err, path, strlen(path)),
              "bad lexicon %zu: status %d, '%s' (want '%s' after the file's name)", i, st, err, bad_lex[i].want);
        CHECK(st == (strstr(bad_lex[i].text, "lex 2") ? QC_ERR_UNSUPPORTED : QC_ERR_FORMAT), "bad lexicon %zu: status %d",
              i, st);
        qc_safety_free(s);
        s = NULL;
        remove(path);
    }
    qc_safety_config_t cfg = {.lexicon_path = "/nonexistent/lex.txt"};
    CHECK(qc_safety_new(&cfg, &s, err, sizeof err) == QC_ERR_IO && !s && strstr(err, "/nonexistent/lex.txt"),
          "a missing lexicon file: %s", err);

    const char *path = temp_file(tiny_lex);
    cfg = (qc_safety_config_t){.lexicon_path = path};
    CHECK(!qc_safety_new(&cfg, &s, err, sizeof err) && s, "a small lexicon: %s", err);
    remove(path);
    if (s) {
        qc_safety_result_t r = qc_safety_match(s, "a Zebra crossing", 16);
        CHECK(r.kind == QC_URGENT_SELF_HARM && r.presentation && !strcmp(r.presentation, "lexicon.self-harm") &&
                  r.term && !strcmp(r.term, "1|zebra"),
              "the lexicon's verdict: %s %s by %s", qc_urgent_name(r.kind), r.presentation ? r.presentation : "-",
              r.term ? r.term : "-");
        r = qc_safety_match(s, "a giraffe crossing", 18);
        CHECK(r.kind == QC_URGENT_NONE && !r.presentation, "below the threshold: %s", qc_urgent_name(r.kind));
        r = qc_safety_match(s, "crushing chest pain spreading to my left arm and jaw, sweating", 62);
        CHECK(r.kind == QC_URGENT_CARDIAC && r.presentation && strncmp(r.presentation, "lexicon.", 8),
              "a rule still decides first: %s %s", qc_urgent_name(r.kind), r.presentation ? r.presentation : "-");
        /* long messages: read in overlapping windows, 32 of them (at least 32 KiB) */
        char *t = padded(10000, "zebra, and more routine text after it");
        CHECK(t && qc_safety_match(s, t, strlen(t)).kind == QC_URGENT_SELF_HARM, "a word 10 KB into a message");
        free(t);
        t = padded(30000, "zebra");
        CHECK(t && qc_safety_match(s, t, strlen(t)).kind == QC_URGENT_SELF_HARM, "a word 30 KB into a message");
        free(t);
        t = padded(60000, "zebra");
        CHECK(t && qc_safety_match(s, t, strlen(t)).kind == QC_URGENT_NONE,
              "a word 60 KB into a message is past what the lexicon reads");
        free(t);
        t = padded(60000, "I want to kill myself");
        CHECK(t && qc_safety_match(s, t, strlen(t)).kind == QC_URGENT_SELF_HARM, "the rules read it all");
        free(t);
        qc_safety_free(s);
        s = NULL;
    }
    cfg = (qc_safety_config_t){.lexicon_path = "off"};
    CHECK(!qc_safety_new(&cfg, &s, err, sizeof err) && s, "lexicon off: %s", err);
    if (s) CHECK(qc_safety_match(s, "a zebra crossing", 16).kind == QC_URGENT_NONE, "lexicon off: the rules alone");
    qc_safety_free(s);
    s = NULL;

    /* The compiled-in weights (data/safety-lex.txt) on this file's own
     * cases: every urgent case is still caught; of the benign and the
     * ordinary ones, a statistical reader may flag a few (measured
     * 2026-12-03: 12 of 415), never more than the bar. */
    qc_safety_config_t def = {0};
    CHECK(!qc_safety_new(&def, &s, err, sizeof err) && s, "the built-in lexicon: %s", err);
    if (!s) return;
    int flagged = 0, total = 0;
    for (size_t i = 0; i < sizeof benign / sizeof benign[0]; i++, total++)
        if (qc_safety_match(s, benign[i], strlen(benign[i])).kind) {
            qc_safety_result_t r = qc_safety_match(s, benign[i], strlen(benign[i]));
            printf("  lexicon flags '%s' as %s (%s)\n", benign[i], qc_urgent_name(r.kind), r.term ? r.term : "-");
            flagged++;
        }
    for (size_t i = 0; i < sizeof ordinary / sizeof ordinary[0]; i++, total++)
        if (qc_safety_match(s, ordinary[i], strlen(ordinary[i])).kind) {
            printf("  lexicon flags '%s'\n", ordinary[i]);
            flagged++;
        }
    for (size_t i = 0; i < sizeof gap_negated / sizeof gap_negated[0]; i++, total++)
        flagged += qc_safety_match(s, gap_negated[i], strlen(gap_negated[i])).kind != QC_URGENT_NONE;
    printf("  lexicon: %d of %d benign, ordinary and negated cases flagged\n", flagged, total);
    CHECK(flagged <= LEX_BENIGN_BAR, "lexicon: %d of %d benign cases flagged (bar %d)", flagged, total, LEX_BENIGN_BAR);
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++)
        CHECK(qc_safety_match(s, positive[i].text, strlen(positive[i].text)).kind == positive[i].want,
              "with the lexicon: '%s'", positive[i].text);
    qc_safety_use(s);
    check_bar("data/safety-eval.jsonl");
    check_bar("data/safety-holdout.jsonl");
    qc_safety_use(rules_only);
    qc_safety_free(s);
}

int main(void) {
    /* The rules' own tests read the rules alone; test_lexicon the second
     * reader on top of them. */
    char err[512];
    qc_safety_config_t ro = {.lexicon_path = "off"};
    CHECK(!qc_safety_new(&ro, &rules_only, err, sizeof err), "the rules alone: %s", err);
    qc_safety_use(rules_only);
    test_rules_file();
    test_text();
    test_presentations();
    for (size_t i = 0; i < sizeof urgent / sizeof urgent[0]; i++) {
        qc_safety_result_t r = qc_safety_check(urgent[i].text, strlen(urgent[i].text));
        CHECK(r.kind == urgent[i].want, "'%s': got %s (%s), want %s", urgent[i].text, qc_urgent_name(r.kind),
              r.term ? r.term : "-", qc_urgent_name(urgent[i].want));
    }
    for (size_t i = 0; i < sizeof ordinary / sizeof ordinary[0]; i++) {
        qc_safety_result_t r = qc_safety_check(ordinary[i], strlen(ordinary[i]));
        CHECK(r.kind == QC_URGENT_NONE, "'%s' flagged as %s by '%s'", ordinary[i], qc_urgent_name(r.kind),
              r.term ? r.term : "-");
    }
    /* Notices: marked, carry the numbers, configurable, truncation-safe. */
    char buf[1024], small[16];
    size_t n = qc_safety_notice(QC_URGENT_CARDIAC, NULL, buf, sizeof buf);
    CHECK(n > 0 && n < sizeof buf && strstr(buf, "URGENT") && strstr(buf, "120"), "default emergency notice: %s", buf);
    n = qc_safety_notice(QC_URGENT_SELF_HARM, NULL, buf, sizeof buf);
    CHECK(strstr(buf, "400-161-9995") && strstr(buf, "988"), "crisis notice carries crisis lines: %s", buf);
    qc_safety_opts_t o = {.emergency_numbers = "999 (UK)", .crisis_lines = "Samaritans 116 123"};
    qc_safety_notice(QC_URGENT_STROKE, &o, buf, sizeof buf);
    CHECK(strstr(buf, "999 (UK)") && !strstr(buf, "120"), "configured emergency number: %s", buf);
    qc_safety_notice(QC_URGENT_SELF_HARM, &o, buf, sizeof buf);
    CHECK(strstr(buf, "Samaritans 116 123"), "configured crisis line");
    n = qc_safety_notice(QC_URGENT_BLEEDING, NULL, small, sizeof small);
    CHECK(n > sizeof small && strlen(small) == sizeof small - 1, "truncated notice is terminated");
    CHECK(qc_safety_notice(QC_URGENT_NONE, NULL, buf, sizeof buf) == 0 && buf[0] == 0, "no notice when not urgent");
    test_notices();
    /* Invalid UTF-8 does not crash and still finds ASCII phrases. */
    const char bad[] = "\xff\xfe I want to kill myself \xc3";
    CHECK(qc_safety_check(bad, sizeof bad - 1).kind == QC_URGENT_SELF_HARM, "invalid UTF-8 input");
    CHECK(qc_safety_check("", 0).kind == QC_URGENT_NONE, "empty input");
    /* The hand-labelled sets: the eval set the rules were tuned against, and
     * the holdout written before the rules were changed. */
    test_cases_file();
    check_bar("data/safety-eval.jsonl");
    check_bar("data/safety-holdout.jsonl");
    test_lexicon();
    qc_safety_use(NULL);
    qc_safety_free(rules_only);
    return test_done("test_safety");
}
