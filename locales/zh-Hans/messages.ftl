# Herald 患者消息，zh-Hans（简体中文）。
# 仅使用获准变量（见 locales/en-US/messages.ftl 和 src/render/mod.rs）。
# 绝不包含诊断、药物、检查或结果。回复关键词（C、R、STOP、START、HELP）保留英文字母。
# Draft translation: a qualified medical translator must review it before production (locales/README.md).

appointment-confirmation =
    .sms = { $practice }：您已预约{ $clinician }，时间为{ $date } { $time }。回复C确认，R改约，STOP退订。
    .subject = 您的预约已成功
    .email =
        您已预约{ $clinician }，时间为{ $date } { $time }，地点：{ $location }。

        如需更改，请致电{ $phone }或访问{ $portal }。

        { $practice }
    .voice = 您好，这里是{ $practice }。您已预约{ $clinician }，时间为{ $date } { $time }。如需更改，请致电{ $phone }。再见。

appointment-reminder =
    .sms = { $practice }：提醒您，您与{ $clinician }的预约在{ $hours ->
       *[other] { $hours }小时
    }后，即{ $date } { $time }。回复C确认，R改约，STOP退订。
    .subject = 预约提醒
    .email =
        提醒您：您与{ $clinician }的预约在{ $date } { $time }，地点：{ $location }。

        如需更改，请致电{ $phone }或访问{ $portal }。

        { $practice }
    .voice = 您好，这里是{ $practice }，提醒您与{ $clinician }的预约在{ $date } { $time }。如需更改，请致电{ $phone }。再见。

appointment-rescheduled =
    .sms = { $practice }：您与{ $clinician }的预约已改到{ $date } { $time }。如有疑问，请致电{ $phone }。回复STOP退订。
    .subject = 您的预约时间已更改
    .email =
        您与{ $clinician }的预约已改到{ $date } { $time }，地点：{ $location }。

        如有疑问，请致电{ $phone }或访问{ $portal }。

        { $practice }
    .voice = 您好，这里是{ $practice }。您与{ $clinician }的预约已改到{ $date } { $time }。如有疑问，请致电{ $phone }。再见。

appointment-cancelled =
    .sms = { $practice }：您在{ $date } { $time }的预约已取消。如需重新预约，请致电{ $phone }或访问{ $portal }。回复STOP退订。
    .subject = 您的预约已取消
    .email =
        您在{ $date } { $time }的预约已取消。

        如需重新预约，请致电{ $phone }或访问{ $portal }。

        { $practice }
    .voice = 您好，这里是{ $practice }。您在{ $date } { $time }的预约已取消。如需重新预约，请致电{ $phone }。再见。

appointment-missed =
    .sms = { $practice }：我们{ $date }未能见到您。如需重新预约，请致电{ $phone }或访问{ $portal }。回复STOP退订。
    .subject = 我们未能见到您
    .email =
        我们{ $date }未能见到您。

        如需重新预约，请致电{ $phone }或访问{ $portal }。

        { $practice }
    .voice = 您好，这里是{ $practice }。我们{ $date }未能见到您。如需重新预约，请致电{ $phone }。再见。

medication-refill-reminder =
    .sms = { $practice }：您可能需要续配处方了。请致电{ $phone }或访问{ $portal }。回复STOP退订。
    .subject = 续配处方提醒
    .email =
        您可能需要续配处方了。

        请致电{ $phone }或访问{ $portal }。

        { $practice }
    .voice = 您好，这里是{ $practice }。您可能需要续配处方了。请致电{ $phone }。再见。

medication-ready-for-pickup =
    .sms = { $practice }：您有一份处方已备好，可以领取。如有疑问，请致电{ $phone }。回复STOP退订。
    .subject = 可以领取了
    .email =
        您有一份处方已备好，可以领取。

        如有疑问，请致电{ $phone }或访问{ $portal }。

        { $practice }
    .voice = 您好，这里是{ $practice }。您有一份处方已备好，可以领取。如有疑问，请致电{ $phone }。再见。

consent-opt-in-confirmation =
    .sms = { $practice }：您将收到预约和处方相关信息，每周最多3条。可能产生短信和数据费用。回复HELP获取帮助，STOP退订。条款：{ $portal }
    .subject = 您已订阅消息通知
    .email =
        您将收到{ $practice }发送的预约和处方相关信息，每周最多3条。

        如需帮助，请致电{ $phone }。如需退订，请回复STOP或访问{ $portal }。
    .voice = 您好，这里是{ $practice }。您将接到有关预约和处方的电话，每周最多3次。如需停止，请致电{ $phone }。再见。

consent-opt-out-confirmation =
    .sms = { $practice }：您已退订，今后不会再收到信息。回复START重新订阅。
    .subject = 您已退订
    .email =
        您已退订，今后不会再收到{ $practice }的信息。

        如需重新订阅，请致电{ $phone }或访问{ $portal }。
    .voice = 您好，这里是{ $practice }。今后您不会再接到我们的电话。如需重新订阅，请致电{ $phone }。再见。

consent-help =
    .sms = { $practice }：如需帮助，请致电{ $phone }或访问{ $portal }。可能产生短信和数据费用。回复STOP退订。
    .subject = 消息帮助
    .email =
        如需{ $practice }消息方面的帮助，请致电{ $phone }或访问{ $portal }。

        如需退订，请回复STOP。
    .voice = 您好，这里是{ $practice }。如需帮助，请致电{ $phone }。再见。

reply-confirmed =
    .sms = { $practice }：谢谢，您在{ $date } { $time }的预约已确认。回复STOP退订。
    .subject = 您的预约已确认
    .email =
        谢谢，您在{ $date } { $time }的预约已确认。

        { $practice }
    .voice = 您好，这里是{ $practice }。谢谢，您在{ $date } { $time }的预约已确认。再见。

reply-reschedule =
    .sms = { $practice }：如需选择新的时间，请访问{ $portal }或致电{ $phone }。回复STOP退订。
    .subject = 请选择新的时间
    .email =
        如需为您的预约选择新的时间，请访问{ $portal }或致电{ $phone }。

        { $practice }
    .voice = 您好，这里是{ $practice }。如需选择新的时间，请致电{ $phone }。再见。

reply-cancel-requested =
    .sms = { $practice }：我们已收到您取消{ $date }预约的申请，工作人员将予以确认。如有疑问，请致电{ $phone }。回复STOP退订。
    .subject = 我们已收到您的取消申请
    .email =
        我们已收到您取消{ $date }预约的申请，工作人员将予以确认。

        如有疑问，请致电{ $phone }。

        { $practice }
    .voice = 您好，这里是{ $practice }。我们已收到您取消{ $date }预约的申请，工作人员将予以确认。再见。

reply-received =
    .sms = { $practice }：谢谢，我们的工作人员会阅读您的信息。如有急事，请致电{ $phone }。回复STOP退订。
    .subject = 我们已收到您的信息
    .email =
        谢谢，我们的工作人员会阅读您的信息。如有急事，请致电{ $phone }。

        { $practice }
    .voice = 您好，这里是{ $practice }。谢谢，我们的工作人员会阅读您的信息。如有急事，请致电{ $phone }。再见。

# A code confirming a number or address the patient entered on the preference
# page (issue 11 F8f): the practice and the code, nothing about the patient.

contact-code =
    .sms = { $practice }：您的验证码是{ $code }。请在10分钟内在偏好设置页面输入。如非本人申请，请忽略此信息。
    .subject = 您的验证码
    .email =
        您的验证码是{ $code }。请在10分钟内在偏好设置页面输入。

        如非本人申请，请忽略此信息。

        { $practice }
    .voice = 您好，这里是{ $practice }。您的验证码是{ $code }。再说一遍，{ $code }。再见。
