# رسائل Herald للمرضى، ar (العربية).
# المتغيرات المعتمدة فقط (انظر locales/en-US/messages.ftl و src/render/mod.rs).
# لا تذكر أبداً تشخيصاً أو دواءً أو فحصاً أو نتيجة. تبقى كلمات الرد C و R و STOP و START و HELP بالحروف اللاتينية.
# صيغة الجمع (الاحترام) لتجنّب التذكير والتأنيث. لا علامات اتجاه في هذا الملف.
# Draft translation: a qualified medical translator must review it before production (locales/README.md).

appointment-confirmation =
    .sms = { $practice }: تم حجز موعدكم مع { $clinician } يوم { $date } الساعة { $time }. للتأكيد ردوا بـ C، ولتغيير الموعد R، ولإيقاف الرسائل STOP.
    .subject = تم حجز موعدكم
    .email =
        تم حجز موعدكم مع { $clinician } يوم { $date } الساعة { $time } في { $location }.

        لتغيير الموعد، يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. تم حجز موعدكم مع { $clinician } يوم { $date } الساعة { $time }. لتغيير الموعد، يرجى الاتصال بالرقم { $phone }. مع السلامة.

appointment-reminder =
    .sms = { $practice }: تذكير، موعدكم مع { $clinician } بعد { $hours ->
        [zero] { $hours } ساعة
        [one] ساعة واحدة
        [two] ساعتين
        [few] { $hours } ساعات
        [many] { $hours } ساعة
       *[other] { $hours } ساعة
    }، يوم { $date } الساعة { $time }. للتأكيد ردوا بـ C، ولتغيير الموعد R، ولإيقاف الرسائل STOP.
    .subject = تذكير بالموعد
    .email =
        نذكّركم بموعدكم مع { $clinician } يوم { $date } الساعة { $time } في { $location }.

        لتغيير الموعد، يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice } لتذكيركم بموعدكم مع { $clinician } يوم { $date } الساعة { $time }. لتغيير الموعد، يرجى الاتصال بالرقم { $phone }. مع السلامة.

appointment-rescheduled =
    .sms = { $practice }: تم نقل موعدكم مع { $clinician } إلى يوم { $date } الساعة { $time }. للاستفسار اتصلوا بالرقم { $phone }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = تم تغيير موعدكم
    .email =
        تم نقل موعدكم مع { $clinician } إلى يوم { $date } الساعة { $time } في { $location }.

        للاستفسار، يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. تم نقل موعدكم مع { $clinician } إلى يوم { $date } الساعة { $time }. للاستفسار، يرجى الاتصال بالرقم { $phone }. مع السلامة.

appointment-cancelled =
    .sms = { $practice }: تم إلغاء موعدكم يوم { $date } الساعة { $time }. لحجز موعد جديد اتصلوا بالرقم { $phone } أو زوروا { $portal }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = تم إلغاء موعدكم
    .email =
        تم إلغاء موعدكم يوم { $date } الساعة { $time }.

        لحجز موعد جديد، يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. تم إلغاء موعدكم يوم { $date } الساعة { $time }. لحجز موعد جديد، يرجى الاتصال بالرقم { $phone }. مع السلامة.

appointment-missed =
    .sms = { $practice }: لم نتمكن من رؤيتكم يوم { $date }. لحجز موعد جديد اتصلوا بالرقم { $phone } أو زوروا { $portal }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = لم نتمكن من رؤيتكم
    .email =
        لم نتمكن من رؤيتكم يوم { $date }.

        لحجز موعد جديد، يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. لم نتمكن من رؤيتكم يوم { $date }. لحجز موعد جديد، يرجى الاتصال بالرقم { $phone }. مع السلامة.

medication-refill-reminder =
    .sms = { $practice }: ربما حان وقت إعادة صرف وصفة طبية. اتصلوا بالرقم { $phone } أو زوروا { $portal }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = تذكير بإعادة صرف الوصفة
    .email =
        ربما حان وقت إعادة صرف وصفة طبية.

        يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. ربما حان وقت إعادة صرف وصفة طبية. يرجى الاتصال بالرقم { $phone }. مع السلامة.

medication-ready-for-pickup =
    .sms = { $practice }: وصفة طبية جاهزة للاستلام. للاستفسار اتصلوا بالرقم { $phone }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = جاهزة للاستلام
    .email =
        وصفة طبية جاهزة للاستلام.

        للاستفسار، يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. وصفة طبية جاهزة للاستلام. للاستفسار، يرجى الاتصال بالرقم { $phone }. مع السلامة.

consent-opt-in-confirmation =
    .sms = { $practice }: ستصلكم رسائل بشأن المواعيد والوصفات الطبية، بحد أقصى 3 رسائل أسبوعياً. قد تُطبق رسوم الرسائل والبيانات. ردوا بـ HELP للمساعدة، و STOP لإيقاف الرسائل. الشروط: { $portal }
    .subject = تم اشتراككم في الرسائل
    .email =
        ستصلكم رسائل بشأن المواعيد والوصفات الطبية من { $practice }، بحد أقصى 3 رسائل أسبوعياً.

        للمساعدة، يرجى الاتصال بالرقم { $phone }. لإيقاف الرسائل، ردوا بـ STOP أو زوروا { $portal }.
    .voice = مرحباً، نتصل بكم من { $practice }. ستصلكم مكالمات بشأن المواعيد والوصفات الطبية، بحد أقصى 3 مكالمات أسبوعياً. لإيقافها، يرجى الاتصال بالرقم { $phone }. مع السلامة.

consent-opt-out-confirmation =
    .sms = { $practice }: تم إلغاء اشتراككم ولن تصلكم رسائل أخرى. للاشتراك مجدداً ردوا بـ START.
    .subject = تم إلغاء اشتراككم
    .email =
        تم إلغاء اشتراككم ولن تصلكم رسائل أخرى من { $practice }.

        للاشتراك مجدداً، يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.
    .voice = مرحباً، نتصل بكم من { $practice }. لن تصلكم مكالمات أخرى. للاشتراك مجدداً، يرجى الاتصال بالرقم { $phone }. مع السلامة.

consent-help =
    .sms = { $practice }: للمساعدة اتصلوا بالرقم { $phone } أو زوروا { $portal }. قد تُطبق رسوم الرسائل والبيانات. لإيقاف الرسائل ردوا بـ STOP.
    .subject = المساعدة بشأن الرسائل
    .email =
        للمساعدة بشأن رسائل { $practice }، يرجى الاتصال بالرقم { $phone } أو زيارة { $portal }.

        لإيقاف الرسائل، ردوا بـ STOP.
    .voice = مرحباً، نتصل بكم من { $practice }. للمساعدة، يرجى الاتصال بالرقم { $phone }. مع السلامة.

reply-confirmed =
    .sms = { $practice }: شكراً لكم، تم تأكيد موعدكم يوم { $date } الساعة { $time }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = تم تأكيد موعدكم
    .email =
        شكراً لكم، تم تأكيد موعدكم يوم { $date } الساعة { $time }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. شكراً لكم، تم تأكيد موعدكم يوم { $date } الساعة { $time }. مع السلامة.

reply-reschedule =
    .sms = { $practice }: لاختيار وقت جديد زوروا { $portal } أو اتصلوا بالرقم { $phone }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = اختاروا وقتاً جديداً
    .email =
        لاختيار وقت جديد لموعدكم، يرجى زيارة { $portal } أو الاتصال بالرقم { $phone }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. لاختيار وقت جديد، يرجى الاتصال بالرقم { $phone }. مع السلامة.

reply-cancel-requested =
    .sms = { $practice }: استلمنا طلبكم إلغاء موعدكم يوم { $date }. سيؤكد موظفونا الإلغاء. للاستفسار اتصلوا بالرقم { $phone }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = استلمنا طلب الإلغاء
    .email =
        استلمنا طلبكم إلغاء موعدكم يوم { $date }. سيؤكد موظفونا الإلغاء.

        للاستفسار، يرجى الاتصال بالرقم { $phone }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. استلمنا طلبكم إلغاء موعدكم يوم { $date }. سيؤكد موظفونا الإلغاء. مع السلامة.

reply-received =
    .sms = { $practice }: شكراً لكم، سيقرأ أحد موظفينا رسالتكم. للأمور العاجلة اتصلوا بالرقم { $phone }. لإيقاف الرسائل ردوا بـ STOP.
    .subject = استلمنا رسالتكم
    .email =
        شكراً لكم، سيقرأ أحد موظفينا رسالتكم. للأمور العاجلة، يرجى الاتصال بالرقم { $phone }.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. شكراً لكم، سيقرأ أحد موظفينا رسالتكم. للأمور العاجلة، يرجى الاتصال بالرقم { $phone }. مع السلامة.

# A code confirming a number or address the patient entered on the preference
# page (issue 11 F8f): the practice and the code, nothing about the patient.

contact-code =
    .sms = { $practice }: رمزكم هو { $code }. أدخلوه في صفحة التفضيلات خلال 10 دقائق. إذا لم تطلبوه، تجاهلوا هذه الرسالة.
    .subject = رمز التأكيد الخاص بكم
    .email =
        رمزكم هو { $code }. أدخلوه في صفحة التفضيلات خلال 10 دقائق.

        إذا لم تطلبوه، تجاهلوا هذه الرسالة.

        { $practice }
    .voice = مرحباً، نتصل بكم من { $practice }. رمزكم هو { $code }. أكرر، { $code }. مع السلامة.
