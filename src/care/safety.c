/* safety.c — the deterministic safety net.
 *
 * A message is urgent when one rule matches. A rule is a category and up to
 * three terms; it matches when every term is found in the text. A term is a
 * group of phrases (any one will do), or two groups whose phrases must meet in
 * one clause (PAIR: "medicine" with "a whole bottle", "left side" with
 * "weak"). Rules are checked in table order, which settles the category when
 * several match: self-harm first (its notice carries the crisis lines), then
 * the specific emergencies before the general ones (choking before an
 * allergy to peanuts, chest pain with breathlessness before breathlessness).
 *
 * Phrases. English phrases match whole words ("son" is not in "reason"); a
 * trailing '*' lets a part be a word's beginning ("allerg*": allergy,
 * allergic; "collaps*": collapsd); '~' joins parts that must follow each
 * other in one clause with at most GAP bytes between ("嘴~歪": 嘴角歪, 嘴也有点歪;
 * "vomit*~blood": vomiting lots of bright red blood). Phrases are written by
 * family (face, speech, one side, call-and-no-answer, ingest-and-chemical),
 * not by sentence, so new wordings of the same sign are caught.
 *
 * Text. It is normalized first: NFKC (full-width forms become ASCII), case
 * folded, apostrophes dropped ("can't" and "cant", "isn't" and "isnt" read
 * the same; phrases are written either way), "cannot" read as "cant",
 * whitespace runs made one space. It is cut at three levels:
 *   1. clauses, at punctuation and at a space next to Chinese text;
 *   2. stretches, also at contrast and time-shift words (but, now, today, 但,
 *      可是, 不过, 只是, 现在, 今天, 这次);
 *   3. spans, also at joining words (and, also, then, 也, 还, 而且, 然后).
 *
 * Context. A phrase found in the text does not count when:
 *   - it is negated: one of 没/不/无/未 right before it, or a negation cue
 *     (no, not, never, don't, isn't, hasn't, without; 没有, 不是, 并不, 没想,
 *     从没, 不会, 不想 ...) at most 3 words / 4 Chinese characters before it
 *     in its span ("I don't want to hurt myself", "我不是想伤害自己", "hasn't
 *     had a seizure in three years"). A cue inside a wider expression is no
 *     negation ("是不是中风", "会不会", "没有任何征兆", "don't know", "no idea").
 *     Negation inside a phrase is part of the phrase ("I don't want to live",
 *     "not breathing", "叫不醒"), so it is never undone by this rule;
 *   - its stretch speaks of the past or of recovery (used to, years ago, last
 *     year, as a teenager, improved, doing well; 以前, 曾经, 小时候, 去年, 有过,
 *     后遗症, 好多了, 就好了): "I used to self-harm as a teenager", "slurred
 *     speech after his stroke has improved", "我以前有过轻生的念头";
 *   - its stretch asks about a risk or a general case rather than reporting
 *     one (risk, side effect, warning signs, what to do if, asked if, can an;
 *     风险, 副作用, 说明书, 倾向, 怎么处理, 听说): "会增加自杀风险吗",
 *     "Does sertraline increase suicide risk?".
 * An `unless` group of a rule (accidental wording for a deliberate overdose,
 * a leg cramp for a child's 抽筋) is looked up without context.
 *
 * The rules aim at what a triage nurse would send to emergency care at once,
 * and deliberately need a warning sign where a symptom alone is common and
 * usually benign: chest pain needs a warning sign (radiating pain, sweating,
 * pallor, breathlessness, crushing pressure); an allergy needs the throat,
 * tongue or breathing involved; slurred speech or a weak arm needs a sudden
 * onset or a second sign; a seizure needs to be a child's or happening now;
 * 抽筋 counts only for a child and not as a leg cramp; pills need an amount
 * ("a whole bottle", "吃了三遍") and chemicals a swallowing verb. Ordinary
 * worry ("I have a mild headache", "最近总是失眠", "胸口有点闷") matches nothing.
 * tests/test_safety.c lists messages each rule must and must not catch, and
 * measures the rules on data/safety-eval.jsonl and data/safety-holdout.jsonl. */
#include "care/safety.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ==== phrases: self-harm ==== */

static const char *const self_harm[] = {
    "kill myself", "killing myself", "kill himself", "killing himself", "kill herself", "killing herself",
    "end my life", "ending my life", "end his life", "end her life", "end their life", "take my own life",
    "take his own life", "take her own life", "suicid*", "want to die", "wanna die",
    "don't want to live", "do not want to live", "doesn't want to live", "no longer want to live",
    "don't want to be alive", "don't want to exist", "don't want to be here anymore", "wish i was dead",
    "wish i were dead", "no reason to live", "nothing to live for", "not worth living", "no point living",
    "no point in living", "better off dead", "better off without me", "hurt myself", "harm myself",
    "hurt himself", "harm himself", "hurt herself", "harm herself", "self-harm", "self harm",
    "going to end it", "gonna end it", "want to end it", "end it all", "end it tonight",
    "goodbye letter*", "goodbye note*", "suicide note", "saying my goodbyes", "said my goodbyes",
    "hang myself", "hanging myself", "got the rope", "got a rope", "noose", "jump off~bridge", "jump off~roof",
    "jump off~building",
    "自杀", "想死", "不想活", "活不下去", "活着没意思", "活着没有意义", "活着太累", "活着好累", "活够了",
    "结束自己", "结束生命", "结束这一切", "结束一切", "一了百了", "了结自己", "了断", "轻生", "割腕",
    "割~手腕", "划~手腕", "跳楼", "阳台~跳", "楼顶~跳", "天台~跳", "窗户~跳", "桥上~跳", "跳河", "跳桥", "卧轨", "上吊", "烧炭", "站在楼顶", "站在天台",
    "伤害自己", "自残", "寻死", "撑不下去", "不想再撑", "遗书", "做傻事", "想去死", "去死", "死了算了", "一死了之",
    "想解脱", "就解脱", "准备好了~刀", "准备好了~药", "准备好了~绳", "攒了~药", "planning to~overdose",
    "plan to~overdose", "going to overdose", "gonna overdose", "want to overdose", "overdose on purpose",
    "stockpil*~pills", "saved up~pills", NULL};

/* Cutting oneself is self-harm unless it is said to be an accident. */
static const char *const self_cut[] = {"cut myself", "cutting myself", "cut himself", "cutting himself",
                                       "cut herself", "cutting herself", "划~自己", "割~自己", NULL};
static const char *const accidental[] = {"accident*", "by mistake", "mistak*", "mixed up", "mix up", "shaving",
                                         "cooking", "误", "不小心", "搞错", "搞混", "当糖", "当成", "以为是",
                                         "切菜", "刮胡子", NULL};

/* A deliberate overdose: an overdose (below) said to be on purpose, or by
 * someone who then cannot be reached. */
static const char *const intent[] = {
    "on purpose", "deliberately", "intentionally", "all my~at once", "all of my~at once", "won't pick up",
    "not picking up", "won't answer", "not answering", "isn't answering", "locked herself", "locked himself",
    "故意", "电话打不通", "打不通", "不接电话", "电话也不接", "电话不接", "联系不上", "不回消息", NULL};

/* ==== phrases: poisoning ==== */

static const char *const poisoning[] = {
    "overdose", "overdosed", "too many pills", "too many tablets", "drank bleach", "swallowed bleach",
    "rat poison", "pesticide", "antifreeze", "swallowed a battery", "carbon monoxide", "误服", "吞服",
    "过量服用", "吃多了药", "吃了很多药", "吃了很多安眠药", "农药", "敌敌畏", "百草枯", "老鼠药", "喝了消毒液",
    "喝了漂白", "吞了电池", "煤气中毒", "一氧化碳", NULL};

static const char *const medicine[] = {
    "pill*", "tablet*", "med", "meds", "medicine*", "medication*", "capsule*", "syrup", "antidepressant*",
    "painkiller*", "paracetamol", "tylenol", "ibuprofen", "aspirin", "insulin", "药", "片", "粒", "胶囊",
    "糖浆", "胰岛素", NULL};
static const char *const large_amount[] = {
    "whole bottle", "whole box", "whole pack*", "whole strip", "whole week", "whole month", "entire bottle",
    "entire pack*", "handful", "a bunch of", "too many", "all of them", "took all", "taken all",
    "swallowed all", "ate all", "一整瓶", "整瓶", "一整盒", "整盒", "一整板", "整板", "一大把", "好几粒",
    "好几片", "十几片", "十几粒", "几十片", "几十粒", "全吃了", "全部吃了", "吃光", "喝光", "吃了三遍",
    "吃了好几遍", "当糖", "一口气吃了", "一次吃完", "一次性吃", "全吃完", "全部吃完", NULL};

static const char *const ingest[] = {
    "drank", "drink*", "swallow*", "ate", "eaten", "eating", "got into", "ingest*", "chewed", "licked", "喝",
    "吞", "吃了", "吃下", "误食", "误喝", "误吞", "咽", "舔", NULL};
static const char *const chemical[] = {
    "bleach", "battery", "batteries", "detergent*", "pod", "pods", "drain cleaner", "toilet cleaner", "cleaner",
    "antifreeze", "poison", "pesticide*", "insecticide*", "weed killer", "weedkiller", "lamp oil", "kerosene",
    "paraffin", "petrol", "gasoline", "lighter fluid", "magnet*", "ammonia", "methanol", "mercury",
    "nail polish remover", "hand sanitizer", "消毒液", "84消毒", "漂白", "农药", "敌敌畏", "百草枯", "老鼠药",
    "鼠药", "杀虫剂", "除草剂", "洗洁精", "洗衣液", "洗衣凝珠", "凝珠", "洁厕", "疏通剂", "汽油", "柴油", "煤油",
    "灯油", "电池", "磁铁", "磁珠", "水银", "防冻液", "甲醇", "工业酒精", NULL};

/* ==== phrases: seizure ==== */

static const char *const seizure[] = {
    "seizure*", "convuls*", "fitting", "having a fit", "eyes~roll*", "foaming at the mouth", "惊厥", "抽搐",
    "抽风", "癫痫发作", "羊癫疯", "羊角风", "抽起来", "一抽一抽", "接着抽", "又抽", "还在抽", "抽个不停",
    "抽了~分钟", "全身发硬", "身体发硬", "全身僵硬", "发僵", "went stiff", "body~stiff", "口吐白沫", "眼睛~上翻", "眼睛~往上翻", "翻白眼", "两眼发直", "双眼发直", "眼睛发直", "牙关紧闭",
    NULL};
static const char *const child[] = {
    "child", "kid", "baby", "son", "daughter", "toddler", "infant", "newborn", "year old", "yr old", "孩子",
    "小孩", "宝宝", "儿子", "女儿", "婴儿", "娃", "宝贝", "小朋友", "新生儿", NULL};
static const char *const seizure_now_or_child[] = {
    "child", "kid", "baby", "son", "daughter", "toddler", "infant", "newborn", "year old", "yr old",
    "won't stop", "not stopping", "right now", "still", "minutes", "mins", "going for", "again",
    "first time", "not responding", "won't respond", "unconscious", "孩子", "小孩", "宝宝", "儿子", "女儿",
    "婴儿", "娃", "宝贝", "小朋友", "新生儿", "不停", "还在", "一直", "没停", "分钟", "倒地", "倒在地上",
    "叫不应", "没反应", "没醒", "接着", "又犯", "犯了", "昏迷", "现在", "正在", "已经", NULL};
/* 抽筋 is a child's fit, but a cramp of a limb. */
static const char *const cramp[] = {"抽筋", NULL};
static const char *const limb_cramp[] = {"腿抽筋", "脚抽筋", "腿肚子抽筋", "脚趾抽筋", "手抽筋", "腿肚抽筋", NULL};

/* ==== phrases: breathing ==== */

static const char *const choke[] = {"choking", "choked", "噎住", "噎着", "噎到", "卡住", "卡了", "卡着",
                                    "stuck in~throat", NULL};
static const char *const choke_sign[] = {
    "can't breathe", "can't cough", "can't cry", "can't talk", "can't speak", "turning blue", "going blue",
    "咳不出", "哭不出", "不会哭", "发不出声", "不出声", "说不出", "憋", "喘不", "不能呼吸", "抓着脖子", "抓脖子", "脸~紫", "脸~青", "发紫", "发青",
    NULL};
static const char *const breathing[] = {
    "can't breathe", "can not breathe", "unable to breathe", "struggling to breathe", "gasping for*",
    "choking", "can't catch~breath", "lips~blu*", "lips~purple", "lips~grey", "lips~gray", "turning blue",
    "going blue", "one word at a time", "can't~full sentence*", "can't finish~sentence*", "unable to~sentence*",
    "inhaler~not help*",
    "inhaler~isn't help*", "inhaler~not work*", "inhaler~doesn't help", "喘不上气", "喘不过气", "喘不动",
    "上不来气", "透不过气", "无法呼吸", "不能呼吸", "窒息", "嘴唇~紫", "嘴唇~青", "嘴唇~乌", "憋紫", "憋得发紫",
    "发绀", "三凹", "往里凹", "肋骨~凹", "噎住", "憋得喘不", "说不出整句", "说不了整句", "一句话~分", "一句话~喘",
    "喷~没用", "喷~不管用", "喷了~还是喘", NULL};

/* ==== phrases: anaphylaxis ==== */

static const char *const allergy[] = {
    "allerg*", "bee sting", "stung", "sting*", "wasp", "bee", "hornet", "hives", "nut", "nuts", "peanut*",
    "shrimp", "prawn*", "shellfish", "seafood", "antibiotic*", "penicillin", "injection", "new med*",
    "过敏", "蜂蛰", "蜂蜇", "蜂", "蛰", "蜇", "风团", "荨麻疹", "疹子", "红疙瘩", "虾", "蟹", "海鲜", "花生",
    "坚果", "芒果", "头孢", "青霉素", "消炎药", "抗生素", "打针", "打完针", "输液", NULL};
static const char *const allergy_warning[] = {
    "throat~clos*", "throat~swell*", "throat~tight*", "swollen throat", "tongue~swell*", "tongue~swollen",
    "swollen tongue", "tongue~huge", "tongue~big", "舌头~大", "face swelling", "face is swelling", "swollen face", "lips swelling", "lips~puff*",
    "puffing up", "wheez*", "trouble breathing", "difficulty breathing", "hard to breathe", "can't breathe",
    "can't swallow", "喉咙~肿", "嗓子~肿", "喉头水肿", "舌头~肿", "脸肿", "嘴唇肿", "嘴唇~肿", "嘴巴~肿",
    "嗓子~紧", "喉咙~紧", "喉咙~掐", "喉咙~堵", "嗓子~堵", "呼吸困难", "喘不", "透不过气", "上不来气", "喘得",
    "有点喘", "开始喘", "喘起来", "气短", NULL};
static const char *const anaphylaxis[] = {"anaphyla*", "过敏性休克", NULL};

/* ==== phrases: cardiac ==== */

static const char *const chest[] = {
    "chest pain*", "chest pressure", "chest tight*", "tight chest", "chest feels", "chest~heavy",
    "chest~hurt*", "pain in my chest", "pain in the chest", "pain in his chest", "pain in her chest",
    "heart attack", "胸痛", "胸口痛", "胸口疼", "心口痛", "心口疼", "胸部疼", "胸部痛", "胸闷", "胸口闷", "胸口压",
    "胸口", "胸部", "胸前", "心口", "心梗", "心肌梗", "心绞痛", "心脏病发作", NULL};
static const char *const cardiac_warning[] = {
    "left arm", "my arm", "his arm", "her arm", "shoulder", "jaw", "neck", "sweat*", "clammy", "grey",
    "gray", "ashen", "pale", "elephant", "short of breath", "shortness of breath", "breathless", "can't breathe",
    "hard to breathe", "nausea", "vomit*", "throwing up", "threw up", "faint*", "passed out", "collaps*",
    "dizzy", "crushing", "squeezing", "radiat*", "spreading", "severe", "nitro*~not help*",
    "nitro*~didn't help", "冷汗", "出汗", "大汗", "汗", "左臂", "手臂", "胳膊", "肩膀", "左肩", "脖子", "下巴", "后背",
    "窜", "呼吸困难", "喘气", "喘不", "喘得", "费劲", "气短", "恶心", "呕吐", "想吐", "吐了", "头晕", "晕倒", "昏倒", "压榨", "放射",
    "压着", "石头", "绞痛", "濒死", "剧烈", "剧痛", "打滚", "发白", "苍白", "煞白", "硝酸甘油~还是",
    "硝酸甘油~没用", "硝酸甘油~不管用", NULL};

/* ==== phrases: stroke ==== */

/* Signs that are enough alone: a drooping face, one side of the body weak. */
static const char *const stroke_signs[] = {
    "face~droop*", "droop*~face", "mouth~droop*", "smile~droop*", "one side~droop*", "face~uneven", "face~lopsided",
    "smile~lopsided", "smile~uneven", "lopsided", "one side of~face", "one-sided weakness", "sudden numbness",
    "sudden weakness", "slurred speech", "slurring", "speech is slurred", "口眼歪斜", "口角歪斜", "嘴~歪",
    "脸~歪", "嘴角~耷拉", "脸~耷拉", "一边脸~麻", "半边脸~麻", "一侧脸~麻", "一侧无力", "一侧麻木", "半身不遂",
    "一边手脚", "一侧手脚", "偏瘫", "突然看不见", NULL};
static const char *const body_side[] = {
    "one side", "left side", "right side", "left arm and leg", "right arm and leg", "一边", "一侧", "半边",
    "左边", "右边", "左侧", "右侧", "左手左腿", "右手右腿", "左手左脚", "右手右脚", "左胳膊左腿", "右胳膊右腿", NULL};
static const char *const limb_side[] = {"left arm", "right arm", "left leg", "right leg", "左手", "右手", "左腿",
                                        "右腿", "左胳膊", "右胳膊", NULL};
static const char *const weak[] = {
    "weak*", "limp", "paraly*", "can't move", "can't lift", "gone dead", "没力气", "没有力气", "没劲", "使不上劲",
    "无力", "动不了", "不能动", "不会动", "抬不起", "拿不住", "不听使唤", "不好使", "不灵", NULL};
static const char *const numb[] = {"numb*", "麻", NULL};
/* Signs that need a sudden onset (or a second sign, caught above). */
static const char *const stroke_speech[] = {
    "words~wrong", "words~jumbled", "words~garbled", "get~words out", "find~words", "speech~garbled",
    "talking funny", "talking gibberish", "slurr*", "can't speak properly", "can't talk properly",
    "can't speak clearly", "can't talk clearly", "can't speak right", "can't talk right", "trouble speaking",
    "说话~含糊", "讲话~含糊", "含含糊糊", "含糊不清", "说话~不清", "讲话~不清", "口齿不清", "吐字不清", "大舌头",
    "舌头~发硬", "舌头~硬", "舌头不灵", "说不利索", "说不出话", "语无伦次", "颠三倒四", "胡言乱语", "说胡话",
    "答非所问", "talking nonsense", NULL};
static const char *const stroke_limb[] = {"can't lift~arm", "arm~went limp", "arm~gone weak", "手脚~没力气",
                                          "手脚~没劲", "胳膊~抬不起", "手~抬不起", "拿不住", NULL};
static const char *const stroke_balance[] = {
    "can't see", "lost~vision", "vision~blur*", "double vision", "can't walk straight", "lost~balance",
    "看不清", "看不见", "视物模糊", "重影", "走路~倒", "往一边倒", "站不稳", "走不稳", "走路不稳", NULL};
static const char *const stroke_word[] = {"stroke", "中风", "脑卒中", "脑梗", NULL};
static const char *const acute[] = {"sudden", "right now", "just now", "happening", "突然", "刚刚", "刚才",
                                    "现在", "正在", NULL};
static const char *const onset[] = {
    "sudden*", "right now", "just now", "just started", "just went", "started", "came on", "mins ago",
    "minutes ago", "this morning", "woke up", "pls help", "please help", "突然", "刚刚", "刚才", "现在", "正在", "分钟前", "小时前", "早上起来", "起床", "醒来", "睡醒", "急",
    "救命", NULL};

/* ==== phrases: bleeding ==== */

static const char *const bleeding[] = {
    "bleeding heavily", "heavy bleeding", "won't stop bleeding", "can't stop the bleeding",
    "bleeding won't stop", "bleeding that won't stop", "severe bleeding", "spurting", "gushing",
    "lot of blood", "lots of blood", "so much blood", "blood everywhere", "blood~spurt*", "blood~gush*",
    "blood~pour*", "blood~soak*", "blood~running down", "blood~won't stop", "blood~won't slow", "soaking through",
    "soaked through", "bleeding~a lot", "bleeding~heavily", "bleeding~badly", "bleeding~won't stop",
    "bleeding~doesn't stop", "vomit*~blood", "throwing up~blood", "coughing up blood", "大出血", "血流不止",
    "止不住血", "血止不住", "血~止不住", "血~按不住", "按不住~血", "血~往外冒", "冒血", "血~喷出", "喷出~血", "喷血",
    "血~往外涌", "血~涌出", "大量出血", "流了很多血", "流了好多血", "流~好多血", "流~很多血", "出了好多血",
    "出了很多血", "吐~好多血", "吐~很多血", "一大口血", "一口血", "几口血", "吐~口血", "一盆血", "一滩血",
    "一地~血", "满脸~血", "满身~血", "血流~满", "血~湿透", "血~浸透", "一直流血", "一直在流血", "一直出血", "流血~很多", "流血~好多", "流血~不少", "出血~很多",
    "出血~好多", "出血~不少", "出血量大", "流血量大",
    "不停~流血", "流血不止", "吐血", "呕血", "咳血", "吐~盆血", NULL};
static const char *const black_stool[] = {"black stool*", "black poo*", "tarry", "黑便", "柏油样", "拉~黑", NULL};
static const char *const faintness[] = {"dizzy", "faint*", "light-headed", "lightheaded", "头晕", "晕", "站不起来",
                                        "心慌", "乏力", "冷汗", NULL};

/* ==== phrases: unconscious ==== */

static const char *const unconscious[] = {
    "unconscious", "won't wake up", "not waking up", "unresponsive", "not breathing", "no pulse",
    "stopped breathing", "can't wake", "can't rouse", "won't wake", "out cold", "not responding to me",
    "not responding to us", "not responding to anything", "isn't responding to me", "isn't responding to us",
    "won't respond to me", "won't respond to us", "won't respond to anything", "昏迷", "叫不醒", "没有意识",
    "失去意识", "没有呼吸", "没呼吸了", "心跳停", "不省人事", "人事不省", "没醒过来", "醒不过来", "叫~不醒",
    "喊~不醒", "拍~不醒", "叫~没反应", "喊~没反应", "拍~没反应", "叫~没有反应", "喊~没有反应", "叫~不应",
    "喊~不应", "叫~不答应", "喊~不答应", NULL};
static const char *const collapse[] = {"collaps*", "passed out", "fainted", "fell down", "on the floor",
                                       "晕倒", "晕到", "昏倒", "昏过去", "晕过去", "倒地", "倒在地上", "软下去",
                                       "瘫倒", "摔倒", NULL};
static const char *const no_response[] = {"not responding", "isn't responding", "won't respond", "no response",
                                          "not moving", "isn't moving", "breathing funny", "没反应", "没有反应",
                                          "不动了", "没动静", NULL};

/* ==== context cues ==== */

/* Negate the phrase right after them. */
static const char *const negation_next[] = {"没", "不", "无", "未", NULL};
/* Negate a phrase at most NEG_WORDS words / NEG_CHARS Chinese characters
 * after them in the same span. */
static const char *const negation_cues[] = {
    "no", "not", "never", "don't", "didn't", "doesn't", "isn't", "aren't", "wasn't", "weren't", "haven't",
    "hasn't", "hadn't", "won't ever", "without", "nor", "neither", "deny", "denies", "没有", "没想", "不是",
    "并不", "并没", "从没", "从来没", "从不", "不会", "不想", "没打算", "不打算", "绝不", "决不", "没再", "否认",
    NULL};
/* Wider expressions a negation cue can sit in without negating anything. */
static const char *const not_negation[] = {
    "don't know", "didn't know", "not sure", "no idea", "not only", "not just", "no one", "no warning",
    "no reason", "don't understand", "是不是", "有没有", "会不会", "要不要", "能不能", "好不好", "行不行", "对不对",
    "不知道", "没有任何征兆", "没有征兆", "没有预兆", "没有任何预兆", "没有原因", "没有任何原因", "不想活",
    "不想再撑", NULL};
enum { NEG_WORDS = 3, NEG_CHARS = 4 };

/* The stretch speaks of the past or of a recovery. */
static const char *const past[] = {
    "used to", "years ago", "year ago", "months ago", "weeks ago", "last year", "last month", "last week",
    "when i was", "as a child", "as a kid", "as a teen*", "in the past", "history of", "in college",
    "in high school", "improved", "recovered", "doing well", "doing ok", "doing okay", "doing fine", "fine now",
    "fine since", "been fine", "better now", "went away", "settled", "以前", "曾经", "小时候", "去年", "上个月",
    "上周", "上次", "前几年", "几年前", "年前", "有过", "过去", "好多了", "好很多", "好转", "恢复", "康复", "后遗症",
    "已经好", "没事了", "全好了", "就好了", "止住了", "消了", "医生说", "doctor said", "diagnosed", NULL};
static const char *const not_past[] = {"分钟以前", "小时以前", "有过敏", NULL};

/* The stretch asks about a risk or a general case. */
static const char *const hypothetical[] = {
    "risk", "risks", "side effect*", "warning sign*", "signs of", "symptoms of", "what to do if",
    "what should i do if", "what do i do if", "if someone", "in case", "how do i know", "how to tell",
    "prevent*", "asked if", "asked me if", "asked whether", "asking if", "asks if", "can an", "can a",
    "can people", "do people", "does a", "does an", "documentary", "风险", "副作用", "说明书", "倾向", "预防",
    "防止", "怎么处理", "怎么急救", "听说", "纪录片", "问我有没有", "可能出现", "会怎样", "会怎么样",
    /* blood taken on purpose */
    "抽血", "献血", "采血", "blood test*", "blood draw", "giving blood", "donat*", NULL};

/* A phrase ending in the first string does not end where the text goes on
 * with the second: "lots of blood" is not "lots of blood tests". */
static const char *const compounds[][2] = {
    {"blood", " test"}, {"blood", " pressure"}, {"blood", " sugar"}, {"blood", " work"},
    {"blood", " count"}, {"blood", " donation"}, {"blood", " draw"}, {"血", "压"}, {"血", "糖"},
    {"血", "常规"}, {"血", "管"}, {"血", "脂"}, {"血", "型"}, {"血", "检"}, {"血", "小板"}, {"血", "氧"},
    {NULL, NULL}};

/* Where the text is cut (see the header): punctuation and a space next to
 * Chinese cut clauses (level 1, in cut_at); these words cut stretches (2)
 * and spans (3). */
static const char *const stretch_cuts[] = {"but", "however", "although", "though", "now", "today", "tonight",
                                           "currently", "this time", "但", "可是", "不过", "只是", "而是", "现在",
                                           "今天", "今晚", "这次", "这回", NULL};
static const char *const span_cuts[] = {"and", "also", "then", "so", "plus", "也", "还", "而且", "然后", "并且",
                                        NULL};

/* ==== rules ==== */

typedef struct {
    const char *const *any;  /* a phrase of this group ... */
    const char *const *with; /* ... and, when set, one of these in the same clause */
} term_t;

typedef struct {
    qc_urgent_t kind;
    term_t need[3];             /* every term must match */
    const char *const *unless;  /* no match when one of these is present */
} rule_t;

#define T(g) {g, NULL}
#define PAIR(a, b) {a, b}

static const term_t overdose = PAIR(medicine, large_amount);

static const rule_t rules[] = {
    {QC_URGENT_SELF_HARM, {T(self_harm)}, NULL},
    {QC_URGENT_SELF_HARM, {T(self_cut)}, accidental},
    {QC_URGENT_SELF_HARM, {overdose, T(intent)}, accidental},
    {QC_URGENT_POISONING, {T(poisoning)}, NULL},
    {QC_URGENT_POISONING, {overdose}, NULL},
    {QC_URGENT_POISONING, {PAIR(ingest, chemical)}, NULL},
    {QC_URGENT_SEIZURE, {T(seizure), T(seizure_now_or_child)}, NULL},
    {QC_URGENT_SEIZURE, {T(cramp), T(child)}, limb_cramp},
    {QC_URGENT_BREATHING, {T(choke), T(choke_sign)}, NULL},
    {QC_URGENT_ANAPHYLAXIS, {T(anaphylaxis)}, NULL},
    {QC_URGENT_ANAPHYLAXIS, {T(allergy), T(allergy_warning)}, NULL},
    {QC_URGENT_ANAPHYLAXIS, {T(allergy), T(breathing)}, NULL},
    {QC_URGENT_CARDIAC, {T(chest), T(cardiac_warning)}, NULL},
    {QC_URGENT_BREATHING, {T(breathing)}, NULL},
    {QC_URGENT_STROKE, {T(stroke_signs)}, NULL},
    {QC_URGENT_STROKE, {PAIR(body_side, weak)}, NULL},
    {QC_URGENT_STROKE, {PAIR(body_side, numb)}, NULL},
    {QC_URGENT_STROKE, {PAIR(limb_side, weak)}, NULL},
    {QC_URGENT_STROKE, {T(stroke_speech), T(onset)}, NULL},
    {QC_URGENT_STROKE, {T(stroke_speech), T(stroke_limb)}, NULL},
    {QC_URGENT_STROKE, {T(stroke_limb), T(onset)}, NULL},
    {QC_URGENT_STROKE, {T(stroke_balance), T(acute)}, NULL},
    {QC_URGENT_STROKE, {T(stroke_word), T(acute)}, NULL},
    {QC_URGENT_BLEEDING, {T(bleeding)}, NULL},
    {QC_URGENT_BLEEDING, {T(black_stool), T(faintness)}, NULL},
    {QC_URGENT_UNCONSCIOUS, {T(unconscious)}, NULL},
    {QC_URGENT_UNCONSCIOUS, {T(collapse), T(no_response)}, NULL},
};

/* ==== the text ==== */

enum { GAP = 30,      /* most bytes between the parts of a '~' phrase */
       PART = 48 };   /* longest part of a phrase, in bytes */

typedef struct {
    char *t;      /* normalized text */
    size_t n;     /* its length in bytes */
    unsigned *id; /* 3 × (n + 1): clause, stretch and span number of each byte */
} msg_t;

static int is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* NFKC + case fold + no apostrophes + "cannot" as "cant" + single spaces.
 * NULL when out of memory; invalid UTF-8 is folded byte-wise (ASCII only)
 * instead. */
static char *normalize(const char *text, size_t len, size_t *out_len) {
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &mapped,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
    const char *src = n >= 0 ? (const char *)mapped : text;
    size_t srclen = n >= 0 ? (size_t)n : len;
    char *out = malloc(srclen + 1);
    if (!out) {
        free(mapped);
        return NULL;
    }
    size_t o = 0;
    int space = 0;
    for (size_t i = 0; i < srclen; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == 0xE2 && i + 2 < srclen && (unsigned char)src[i + 1] == 0x80 &&
            ((unsigned char)src[i + 2] == 0x98 || (unsigned char)src[i + 2] == 0x99)) {
            i += 2; /* U+2018 / U+2019 */
            continue;
        }
        if (c == '\'') continue;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!space && o > 0) out[o++] = ' ';
            space = 1;
            continue;
        }
        space = 0;
        out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[o] = 0;
    /* "cannot" reads as "cant" (the text only shrinks). */
    size_t w = 0;
    for (size_t r = 0; r <= o; r++) {
        if (!strncmp(out + r, "cannot", 6) && (r == 0 || !is_word_char(out[r - 1])) && !is_word_char(out[r + 6])) {
            memcpy(out + w, "cant", 4);
            w += 4;
            r += 5;
        } else {
            out[w++] = out[r];
        }
    }
    o = w - 1;
    free(mapped);
    *out_len = o;
    return out;
}

/* Whether word w (ASCII) or string w (Chinese) starts at t + i. */
static int word_at(const msg_t *m, size_t i, const char *w) {
    size_t k = strlen(w);
    if (i + k > m->n || memcmp(m->t + i, w, k)) return 0;
    if (!is_word_char(w[0])) return 1;
    return (i == 0 || !is_word_char(m->t[i - 1])) && !is_word_char(m->t[i + k]);
}

/* The level (1 clause, 2 stretch, 3 span) of a cut starting at t + i and its
 * length in *k, or 0 when none starts there. */
static int cut_at(const msg_t *m, size_t i, size_t *k) {
    const unsigned char *t = (const unsigned char *)m->t;
    unsigned char c = t[i];
    *k = 1;
    if (c && strchr(",!?;:()[]\"\n", c)) return 1;
    if (c == '.') return i > 0 && is_digit(t[i - 1]) && is_digit(t[i + 1]) ? 0 : 1;
    if (c == ' ') return (i > 0 && t[i - 1] >= 0x80) || t[i + 1] >= 0x80 ? 1 : 0;
    static const char *const marks[] = {"。", "、", "…", "—", "“", "”", "「", "」", "《", "》", NULL};
    for (const char *const *p = marks; *p; p++)
        if (!strncmp((const char *)t + i, *p, strlen(*p))) {
            *k = strlen(*p);
            return 1;
        }
    for (int level = 2; level <= 3; level++)
        for (const char *const *w = level == 2 ? stretch_cuts : span_cuts; *w; w++)
            if (word_at(m, i, *w)) {
                *k = strlen(*w);
                return level;
            }
    return 0;
}

/* Cuts m->t into clauses, stretches and spans (m->id). -1 when out of memory. */
static int msg_cut(msg_t *m) {
    m->id = malloc(3 * (m->n + 1) * sizeof *m->id);
    if (!m->id) return -1;
    unsigned count[3] = {0, 0, 0};
    for (size_t i = 0, k; i <= m->n; i += k) {
        int level = i < m->n ? cut_at(m, i, &k) : (k = 1, 0);
        if (!level) k = 1;
        for (int l = level ? level : 4; l <= 3; l++) count[l - 1]++;
        for (size_t j = i; j < i + k && j <= m->n; j++)
            for (int l = 0; l < 3; l++) m->id[l * (m->n + 1) + j] = count[l];
    }
    return 0;
}

/* The first and one-past-last byte of the region (1 clause, 2 stretch,
 * 3 span) that holds byte i. */
static size_t region_start(const msg_t *m, int level, size_t i) {
    const unsigned *id = m->id + (size_t)(level - 1) * (m->n + 1);
    while (i > 0 && id[i - 1] == id[i]) i--;
    return i;
}
static size_t region_end(const msg_t *m, int level, size_t i) {
    const unsigned *id = m->id + (size_t)(level - 1) * (m->n + 1);
    size_t e = i;
    while (e < m->n && id[e] == id[i]) e++;
    return e;
}

/* ==== matching ==== */

typedef struct {
    char s[4][PART]; /* the parts, without apostrophes */
    size_t k[4];     /* their lengths */
    int prefix[4];   /* part ended in '*' */
    int n;
} pattern_t;

/* Splits phrase p at '~'. 0 when a part is empty or too long (the phrase is
 * then never found). */
static int pattern_parse(const char *p, pattern_t *pt) {
    size_t k = 0;
    pt->n = 0;
    for (;; p++) {
        if (*p == '~' || !*p) {
            int prefix = k > 0 && pt->s[pt->n][k - 1] == '*';
            k -= (size_t)prefix;
            if (!k) return 0;
            pt->s[pt->n][k] = 0;
            pt->k[pt->n] = k;
            pt->prefix[pt->n] = prefix;
            pt->n++;
            k = 0;
            if (!*p) return 1;
            if (pt->n == 4) return 0;
        } else if (*p != '\'') {
            if (k + 1 >= PART) return 0;
            pt->s[pt->n][k++] = *p;
        }
    }
}

/* Whether part j of pt may stand at t + at: whole words for ASCII, and not
 * the start of a longer compound ("blood" + " test"). */
static int part_fits(const msg_t *m, const pattern_t *pt, int j, size_t at) {
    const char *s = pt->s[j];
    size_t k = pt->k[j];
    if (is_word_char(s[0]) && at > 0 && is_word_char(m->t[at - 1])) return 0;
    if (pt->prefix[j]) return 1;
    if (is_word_char(s[k - 1]) && is_word_char(m->t[at + k])) return 0;
    for (size_t c = 0; compounds[c][0]; c++) {
        size_t a = strlen(compounds[c][0]), b = strlen(compounds[c][1]);
        if (k >= a && !memcmp(s + k - a, compounds[c][0], a) && !strncmp(m->t + at + k, compounds[c][1], b))
            return 0;
    }
    return 1;
}

/* The first occurrence of pt that starts at or after `from` and ends by hi:
 * its start in *at, its end in *end. Later parts follow the one before them
 * in the same clause, at most GAP bytes after it. */
static int next_match(const msg_t *m, const pattern_t *pt, size_t from, size_t hi, size_t *at, size_t *end) {
    const unsigned *clause = m->id;
    for (const char *s = strstr(m->t + from, pt->s[0]); s; s = strstr(s + 1, pt->s[0])) {
        size_t a = (size_t)(s - m->t), e = a + pt->k[0];
        if (e > hi) return 0;
        if (!part_fits(m, pt, 0, a)) continue;
        int j = 1;
        for (; j < pt->n; j++) {
            const char *q = strstr(m->t + e, pt->s[j]);
            while (q && (size_t)(q - m->t) <= e + GAP && !part_fits(m, pt, j, (size_t)(q - m->t))) q = strstr(q + 1, pt->s[j]);
            if (!q) break;
            size_t qa = (size_t)(q - m->t);
            if (qa > e + GAP || qa + pt->k[j] > hi || clause[qa] != clause[a]) break;
            e = qa + pt->k[j];
        }
        if (j < pt->n) continue;
        *at = a;
        *end = e;
        return 1;
    }
    return 0;
}

/* Whether the cue found at t + at (cue text c) sits inside one of the wider
 * expressions in `within`. */
static int inside(const msg_t *m, size_t at, const char *c, const char *const *within) {
    for (const char *const *w = within; w && *w; w++) {
        pattern_t e;
        if (!pattern_parse(*w, &e)) continue;
        for (const char *o = strstr(e.s[0], c); o; o = strstr(o + 1, c)) {
            size_t off = (size_t)(o - e.s[0]);
            if (at >= off && at - off + e.k[0] <= m->n && !memcmp(m->t + at - off, e.s[0], e.k[0])) return 1;
        }
    }
    return 0;
}

/* Words (ASCII) and Chinese characters in t[a, b). */
static size_t units(const msg_t *m, size_t a, size_t b) {
    size_t u = 0;
    for (size_t i = a; i < b; i++) {
        unsigned char c = (unsigned char)m->t[i];
        if (c >= 0xC0 || (is_word_char((char)c) && (i == 0 || !is_word_char(m->t[i - 1])))) u++;
    }
    return u;
}

/* Whether a cue of the list occurs in t[lo, hi), not inside an `except`
 * expression; with near_at set, only a cue ending at most NEG_WORDS words /
 * NEG_CHARS characters before near_at counts. */
static int cue_in(const msg_t *m, const char *const *cues, const char *const *except, size_t lo, size_t hi,
                  const size_t *near_at) {
    for (const char *const *c = cues; *c; c++) {
        pattern_t pt;
        size_t a, e;
        if (!pattern_parse(*c, &pt)) continue;
        for (size_t from = lo; next_match(m, &pt, from, hi, &a, &e); from = a + 1) {
            if (inside(m, a, pt.s[0], except)) continue;
            if (near_at && units(m, e, *near_at) > (is_word_char(pt.s[0][0]) ? NEG_WORDS : NEG_CHARS)) continue;
            return 1;
        }
    }
    return 0;
}

/* Whether the phrase found at t[at, end) counts: not negated, and its
 * stretch neither past nor hypothetical (see the header). */
static int counts(const msg_t *m, size_t at, size_t end) {
    for (const char *const *n = negation_next; *n; n++) {
        size_t k = strlen(*n);
        if (at >= k && !memcmp(m->t + at - k, *n, k) && !inside(m, at - k, *n, not_negation)) return 0;
    }
    if (cue_in(m, negation_cues, not_negation, region_start(m, 3, at), at, &at)) return 0;
    size_t lo = region_start(m, 2, at), hi = region_end(m, 2, end - 1);
    return !cue_in(m, past, not_past, lo, hi, NULL) && !cue_in(m, hypothetical, NULL, lo, hi, NULL);
}

/* The first phrase of group found in t[lo, hi) (that counts, when ctx), or
 * NULL. */
static const char *find_any(const msg_t *m, const char *const *group, size_t lo, size_t hi, int ctx) {
    for (const char *const *p = group; *p; p++) {
        pattern_t pt;
        size_t a, e;
        if (!pattern_parse(*p, &pt)) continue;
        for (size_t from = lo; next_match(m, &pt, from, hi, &a, &e); from = a + 1)
            if (!ctx || counts(m, a, e)) return *p;
    }
    return NULL;
}

/* The phrase that satisfies term (of term->any), or NULL. */
static const char *term_find(const msg_t *m, const term_t *term) {
    if (!term->with) return find_any(m, term->any, 0, m->n, 1);
    for (const char *const *p = term->any; *p; p++) {
        pattern_t pt;
        size_t a, e;
        if (!pattern_parse(*p, &pt)) continue;
        for (size_t from = 0; next_match(m, &pt, from, m->n, &a, &e); from = a + 1)
            if (counts(m, a, e) && find_any(m, term->with, region_start(m, 1, a), region_end(m, 1, e - 1), 1))
                return *p;
    }
    return NULL;
}

qc_safety_result_t qc_safety_check(const char *text, size_t len) {
    qc_safety_result_t r = {QC_URGENT_NONE, NULL};
    msg_t m = {NULL, 0, NULL};
    m.t = normalize(text, len, &m.n);
    if (!m.t || msg_cut(&m)) goto done;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0] && !r.kind; i++) {
        const rule_t *rule = &rules[i];
        if (rule->unless && find_any(&m, rule->unless, 0, m.n, 0)) continue;
        const char *first = NULL;
        int ok = 1;
        for (int g = 0; g < 3 && rule->need[g].any && ok; g++) {
            const char *hit = term_find(&m, &rule->need[g]);
            if (!hit) ok = 0;
            else if (!first) first = hit;
        }
        if (ok) r = (qc_safety_result_t){rule->kind, first};
    }
done:
    free(m.id);
    free(m.t);
    return r;
}

const char *qc_urgent_name(qc_urgent_t kind) {
    static const char *const names[] = {"none",        "cardiac",   "stroke",  "bleeding",    "breathing",
                                        "anaphylaxis", "poisoning", "seizure", "unconscious", "self-harm",
                                        "model"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "unknown";
}

/* ==== the notice ==== */

size_t qc_safety_notice(qc_urgent_t kind, const qc_safety_opts_t *opts, char *out, size_t cap) {
    if (kind == QC_URGENT_NONE) {
        if (cap) out[0] = 0;
        return 0;
    }
    const char *em = opts && opts->emergency_numbers ? opts->emergency_numbers
                                                     : "120 (China), 911 (US), 112 (EU) or your local emergency number";
    const char *crisis = opts && opts->crisis_lines
                             ? opts->crisis_lines
                             : "全国心理援助热线 400-161-9995, 北京心理危机干预中心 010-82951332, US 988";
    int n;
    if (kind == QC_URGENT_MODEL) /* no kind known: both the emergency numbers and the crisis lines */
        n = snprintf(out, cap,
                     "⚠️ 紧急 / URGENT: 您描述的情况可能需要紧急处理，请立即拨打急救电话 %s 或前往最近的急诊；"
                     "如果您有伤害自己的想法，请联系心理危机热线：%s。不要等待线上回复。 What you describe may be "
                     "an emergency: call %s now or go to the nearest emergency department; if you are thinking of "
                     "harming yourself, contact a crisis line (%s). Do not wait for an online reply.",
                     em, crisis, em, crisis);
    else if (kind == QC_URGENT_SELF_HARM)
        n = snprintf(out, cap,
                     "⚠️ 紧急 / URGENT: 如果您有伤害自己的想法，请立即联系心理危机热线：%s；如有生命危险请拨打 %s。"
                     "您并不孤单，现在就找身边信任的人陪着您。 If you are thinking of harming yourself, please "
                     "contact a crisis line now (%s) or call %s. You are not alone.",
                     crisis, em, crisis, em);
    else
        n = snprintf(out, cap,
                     "⚠️ 紧急 / URGENT: 您描述的情况可能危及生命，请立即拨打急救电话 %s，或尽快前往最近的急诊。"
                     "不要等待线上回复。 What you describe may be a medical emergency: call %s now or go to the "
                     "nearest emergency department. Do not wait for an online reply.",
                     em, em);
    return n < 0 ? 0 : (size_t)n;
}
