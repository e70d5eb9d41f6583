# Mesaj Herald pou pasyan yo, ht (kreyòl ayisyen).
# Se sèlman varyab ki apwouve yo (gade locales/en-US/messages.ftl ak src/render/mod.rs).
# Pa janm mete yon dyagnostik, yon medikaman, yon tès oswa yon rezilta. Kenbe C, R, STOP, START, HELP jan yo ye a.
# Tèks la rete nan alfabè SMS GSM-7 (è, ò pase; evite lòt aksan ak tirè long).
# Draft translation: a qualified medical translator must review it before production (locales/README.md).

appointment-confirmation =
    .sms = { $practice }: randevou ou ak { $clinician } pou { $date } a { $time } fikse. Reponn C pou konfime, R pou chanje dat, STOP pou sispann mesaj yo.
    .subject = Randevou ou fikse
    .email =
        Randevou ou ak { $clinician } pou { $date } a { $time } nan { $location } fikse.

        Pou chanje l, rele { $phone } oswa ale sou { $portal }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Randevou ou ak { $clinician } pou { $date } a { $time } fikse. Pou chanje l, rele { $phone }. Orevwa.

appointment-reminder =
    .sms = { $practice }: rapèl, randevou ou ak { $clinician } nan { $hours ->
       *[other] { $hours } èdtan
    }, { $date } a { $time }. Reponn C pou konfime, R pou chanje dat, STOP pou sispann mesaj yo.
    .subject = Rapèl randevou
    .email =
        Sa a se yon rapèl pou randevou ou ak { $clinician } { $date } a { $time } nan { $location }.

        Pou chanje l, rele { $phone } oswa ale sou { $portal }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap rele pou raple w randevou ou ak { $clinician } { $date } a { $time }. Pou chanje l, rele { $phone }. Orevwa.

appointment-rescheduled =
    .sms = { $practice }: randevou ou ak { $clinician } chanje pou { $date } a { $time }. Ou gen kesyon? Rele { $phone }. Reponn STOP pou sispann mesaj yo.
    .subject = Randevou ou chanje
    .email =
        Randevou ou ak { $clinician } chanje pou { $date } a { $time } nan { $location }.

        Ou gen kesyon? Rele { $phone } oswa ale sou { $portal }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Randevou ou ak { $clinician } chanje pou { $date } a { $time }. Ou gen kesyon? Rele { $phone }. Orevwa.

appointment-cancelled =
    .sms = { $practice }: randevou ou { $date } a { $time } anile. Pou pran yon lòt randevou, rele { $phone } oswa ale sou { $portal }. Reponn STOP pou sispann mesaj yo.
    .subject = Randevou ou anile
    .email =
        Randevou ou { $date } a { $time } anile.

        Pou pran yon lòt randevou, rele { $phone } oswa ale sou { $portal }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Randevou ou { $date } a { $time } anile. Pou pran yon lòt randevou, rele { $phone }. Orevwa.

appointment-missed =
    .sms = { $practice }: nou pa t wè w { $date }. Pou pran yon nouvo randevou, rele { $phone } oswa ale sou { $portal }. Reponn STOP pou sispann mesaj yo.
    .subject = Nou pa t wè w
    .email =
        Nou pa t wè w { $date }.

        Pou pran yon nouvo randevou, rele { $phone } oswa ale sou { $portal }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Nou pa t wè w { $date }. Pou pran yon nouvo randevou, rele { $phone }. Orevwa.

medication-refill-reminder =
    .sms = { $practice }: li ka lè pou w renouvle yon preskripsyon. Rele { $phone } oswa ale sou { $portal }. Reponn STOP pou sispann mesaj yo.
    .subject = Rapèl pou renouvle preskripsyon
    .email =
        Li ka lè pou w renouvle yon preskripsyon.

        Rele { $phone } oswa ale sou { $portal }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Li ka lè pou w renouvle yon preskripsyon. Tanpri rele { $phone }. Orevwa.

medication-ready-for-pickup =
    .sms = { $practice }: yon preskripsyon pare pou w vin chèche. Ou gen kesyon? Rele { $phone }. Reponn STOP pou sispann mesaj yo.
    .subject = Pare pou w vin chèche
    .email =
        Yon preskripsyon pare pou w vin chèche.

        Ou gen kesyon? Rele { $phone } oswa ale sou { $portal }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Yon preskripsyon pare pou w vin chèche. Ou gen kesyon? Rele { $phone }. Orevwa.

consent-opt-in-confirmation =
    .sms = { $practice }: w ap resevwa mesaj sou randevou ak preskripsyon, jiska 3 pa semèn. Frè pou mesaj ak done ka aplike. Reponn HELP pou èd, STOP pou sispann mesaj yo. Kondisyon: { $portal }
    .subject = Ou enskri pou resevwa mesaj
    .email =
        W ap resevwa mesaj sou randevou ak preskripsyon nan men { $practice }, jiska 3 pa semèn.

        Pou èd, rele { $phone }. Pou sispann, reponn STOP oswa ale sou { $portal }.
    .voice = Bonjou, se { $practice } k ap pale. W ap resevwa apèl sou randevou ak preskripsyon, jiska 3 pa semèn. Pou sispann, rele { $phone }. Orevwa.

consent-opt-out-confirmation =
    .sms = { $practice }: ou dezabòne, ou p ap resevwa okenn lòt mesaj. Reponn START pou w reabòne.
    .subject = Ou dezabòne
    .email =
        Ou dezabòne, ou p ap resevwa okenn lòt mesaj nan men { $practice }.

        Pou w reabòne, rele { $phone } oswa ale sou { $portal }.
    .voice = Bonjou, se { $practice } k ap pale. Ou p ap resevwa okenn lòt apèl. Pou w reabòne, rele { $phone }. Orevwa.

consent-help =
    .sms = { $practice }: pou èd, rele { $phone } oswa ale sou { $portal }. Frè pou mesaj ak done ka aplike. Reponn STOP pou sispann mesaj yo.
    .subject = Èd pou mesaj yo
    .email =
        Pou èd ak mesaj { $practice } yo, rele { $phone } oswa ale sou { $portal }.

        Pou sispann, reponn STOP.
    .voice = Bonjou, se { $practice } k ap pale. Pou èd, rele { $phone }. Orevwa.

reply-confirmed =
    .sms = { $practice }: mesi, randevou ou { $date } a { $time } konfime. Reponn STOP pou sispann mesaj yo.
    .subject = Randevou ou konfime
    .email =
        Mesi, randevou ou { $date } a { $time } konfime.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Mesi, randevou ou { $date } a { $time } konfime. Orevwa.

reply-reschedule =
    .sms = { $practice }: pou chwazi yon lòt lè, ale sou { $portal } oswa rele { $phone }. Reponn STOP pou sispann mesaj yo.
    .subject = Chwazi yon lòt lè
    .email =
        Pou chwazi yon lòt lè pou randevou ou, ale sou { $portal } oswa rele { $phone }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Pou chwazi yon lòt lè, tanpri rele { $phone }. Orevwa.

reply-cancel-requested =
    .sms = { $practice }: nou resevwa demann ou pou anile randevou ou { $date }. Anplwaye nou yo ap konfime l. Ou gen kesyon? Rele { $phone }. Reponn STOP pou sispann mesaj yo.
    .subject = Nou resevwa demann ou pou anile randevou a
    .email =
        Nou resevwa demann ou pou anile randevou ou { $date }. Anplwaye nou yo ap konfime l.

        Ou gen kesyon? Rele { $phone }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Nou resevwa demann ou pou anile randevou ou { $date }. Anplwaye nou yo ap konfime l. Orevwa.

reply-received =
    .sms = { $practice }: mesi, yon moun nan ekip nou an ap li mesaj ou. Si se yon bagay ki ijan, rele { $phone }. Reponn STOP pou sispann mesaj yo.
    .subject = Nou resevwa mesaj ou
    .email =
        Mesi, yon moun nan ekip nou an ap li mesaj ou. Si se yon bagay ki ijan, rele { $phone }.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Mesi, yon moun nan ekip nou an ap li mesaj ou. Si se yon bagay ki ijan, rele { $phone }. Orevwa.

# A code confirming a number or address the patient entered on the preference
# page (issue 11 F8f): the practice and the code, nothing about the patient.

contact-code =
    .sms = { $practice }: kòd ou se { $code }. Antre l sou paj preferans yo nan 10 minit. Si se pa ou ki te mande l, pa okipe mesaj sa a.
    .subject = Kòd konfimasyon ou
    .email =
        Kòd ou se { $code }. Antre l sou paj preferans yo nan 10 minit.

        Si se pa ou ki te mande l, pa okipe mesaj sa a.

        { $practice }
    .voice = Bonjou, se { $practice } k ap pale. Kòd ou se { $code }. Ankò, { $code }. Orevwa.
