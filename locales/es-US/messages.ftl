# Mensajes de Herald para pacientes, es-US.
# Solo variables aprobadas (ver locales/en-US/messages.ftl y src/render/mod.rs).
# Nunca un diagnóstico, medicamento, prueba o resultado.

appointment-confirmation =
    .sms = { $practice }: su cita con { $clinician } el { $date } a las { $time } está programada. Responda C para confirmar, R para cambiarla, STOP para no recibir más.
    .subject = Su cita está programada
    .email =
        Su cita con { $clinician } el { $date } a las { $time } en { $location } está programada.

        Para cambiarla, llame al { $phone } o visite { $portal }.

        { $practice }
    .voice = Hola, le llama { $practice }. Su cita con { $clinician } el { $date } a las { $time } está programada. Para cambiarla, llame al { $phone }. Adiós.

appointment-reminder =
    .sms = { $practice }: recordatorio, su cita con { $clinician } es en { $hours ->
        [one] { $hours } hora
       *[other] { $hours } horas
    }, el { $date } a las { $time }. Responda C para confirmar, R para cambiarla, STOP para no recibir más.
    .subject = Recordatorio de cita
    .email =
        Le recordamos su cita con { $clinician } el { $date } a las { $time } en { $location }.

        Para cambiarla, llame al { $phone } o visite { $portal }.

        { $practice }
    .voice = Hola, le llama { $practice } para recordarle su cita con { $clinician } el { $date } a las { $time }. Para cambiarla, llame al { $phone }. Adiós.

appointment-rescheduled =
    .sms = { $practice }: su cita con { $clinician } cambió al { $date } a las { $time }. ¿Preguntas? Llame al { $phone }. Responda STOP para no recibir más.
    .subject = Su cita cambió
    .email =
        Su cita con { $clinician } cambió al { $date } a las { $time } en { $location }.

        ¿Preguntas? Llame al { $phone } o visite { $portal }.

        { $practice }
    .voice = Hola, le llama { $practice }. Su cita con { $clinician } cambió al { $date } a las { $time }. ¿Preguntas? Llame al { $phone }. Adiós.

appointment-cancelled =
    .sms = { $practice }: su cita del { $date } a las { $time } fue cancelada. Para programar otra llame al { $phone } o visite { $portal }. Responda STOP para no recibir más.
    .subject = Su cita fue cancelada
    .email =
        Su cita del { $date } a las { $time } fue cancelada.

        Para programar otra, llame al { $phone } o visite { $portal }.

        { $practice }
    .voice = Hola, le llama { $practice }. Su cita del { $date } a las { $time } fue cancelada. Para programar otra, llame al { $phone }. Adiós.

appointment-missed =
    .sms = { $practice }: lo extrañamos el { $date }. Para programar otra visita llame al { $phone } o visite { $portal }. Responda STOP para no recibir más.
    .subject = Lo extrañamos
    .email =
        Lo extrañamos el { $date }.

        Para programar otra visita, llame al { $phone } o visite { $portal }.

        { $practice }
    .voice = Hola, le llama { $practice }. Lo extrañamos el { $date }. Para programar otra visita, llame al { $phone }. Adiós.

medication-refill-reminder =
    .sms = { $practice }: puede ser momento de resurtir una receta. Llame al { $phone } o visite { $portal }. Responda STOP para no recibir más.
    .subject = Recordatorio para resurtir
    .email =
        Puede ser momento de resurtir una receta.

        Llame al { $phone } o visite { $portal }.

        { $practice }
    .voice = Hola, le llama { $practice }. Puede ser momento de resurtir una receta. Por favor llame al { $phone }. Adiós.

medication-ready-for-pickup =
    .sms = { $practice }: una receta está lista para recoger. ¿Preguntas? Llame al { $phone }. Responda STOP para no recibir más.
    .subject = Lista para recoger
    .email =
        Una receta está lista para recoger.

        ¿Preguntas? Llame al { $phone } o visite { $portal }.

        { $practice }
    .voice = Hola, le llama { $practice }. Una receta está lista para recoger. ¿Preguntas? Llame al { $phone }. Adiós.

consent-opt-in-confirmation =
    .sms = { $practice }: recibirá mensajes de citas y recetas, hasta 3 por semana. Pueden aplicarse tarifas de mensajes y datos. Responda HELP para ayuda, STOP para no recibir más. Términos: { $portal }
    .subject = Está inscrito para recibir mensajes
    .email =
        Recibirá mensajes de citas y recetas de { $practice }, hasta 3 por semana.

        Para ayuda llame al { $phone }. Para no recibir más, responda STOP o visite { $portal }.
    .voice = Hola, le llama { $practice }. Recibirá llamadas de citas y recetas, hasta 3 por semana. Para no recibir más, llame al { $phone }. Adiós.

consent-opt-out-confirmation =
    .sms = { $practice }: se canceló su suscripción y no recibirá más mensajes. Responda START para volver a suscribirse.
    .subject = Se canceló su suscripción
    .email =
        Se canceló su suscripción y no recibirá más mensajes de { $practice }.

        Para volver a suscribirse, llame al { $phone } o visite { $portal }.
    .voice = Hola, le llama { $practice }. No recibirá más llamadas. Para volver a suscribirse, llame al { $phone }. Adiós.

consent-help =
    .sms = { $practice }: para ayuda llame al { $phone } o visite { $portal }. Pueden aplicarse tarifas de mensajes y datos. Responda STOP para no recibir más.
    .subject = Ayuda con los mensajes
    .email =
        Para ayuda con los mensajes de { $practice }, llame al { $phone } o visite { $portal }.

        Para no recibir más, responda STOP.
    .voice = Hola, le llama { $practice }. Para ayuda, llame al { $phone }. Adiós.

reply-confirmed =
    .sms = { $practice }: gracias, su cita del { $date } a las { $time } está confirmada. Responda STOP para no recibir más.
    .subject = Su cita está confirmada
    .email =
        Gracias, su cita del { $date } a las { $time } está confirmada.

        { $practice }
    .voice = Hola, le llama { $practice }. Gracias, su cita del { $date } a las { $time } está confirmada. Adiós.

reply-reschedule =
    .sms = { $practice }: para elegir otra hora, visite { $portal } o llame al { $phone }. Responda STOP para no recibir más.
    .subject = Elija otra hora
    .email =
        Para elegir otra hora para su cita, visite { $portal } o llame al { $phone }.

        { $practice }
    .voice = Hola, le llama { $practice }. Para elegir otra hora, llame al { $phone }. Adiós.

reply-cancel-requested =
    .sms = { $practice }: recibimos su solicitud para cancelar su cita del { $date }. Nuestro personal la confirmará. ¿Preguntas? Llame al { $phone }. Responda STOP para no recibir más.
    .subject = Recibimos su solicitud de cancelación
    .email =
        Recibimos su solicitud para cancelar su cita del { $date }. Nuestro personal la confirmará.

        ¿Preguntas? Llame al { $phone }.

        { $practice }
    .voice = Hola, le llama { $practice }. Recibimos su solicitud para cancelar su cita del { $date }. Nuestro personal la confirmará. Adiós.

reply-received =
    .sms = { $practice }: gracias, un miembro de nuestro personal leerá su mensaje. Si es urgente, llame al { $phone }. Responda STOP para no recibir más.
    .subject = Recibimos su mensaje
    .email =
        Gracias, un miembro de nuestro personal leerá su mensaje. Si es urgente, llame al { $phone }.

        { $practice }
    .voice = Hola, le llama { $practice }. Gracias, un miembro de nuestro personal leerá su mensaje. Si es urgente, llame al { $phone }. Adiós.

# A code confirming a number or address the patient entered on the preference
# page (issue 11 F8f): the practice and the code, nothing about the patient.

contact-code =
    .sms = { $practice }: su código es { $code }. Ingréselo en la página de preferencias en 10 minutos. Si no lo pidió, ignore este mensaje.
    .subject = Su código de confirmación
    .email =
        Su código es { $code }. Ingréselo en la página de preferencias en 10 minutos.

        Si no lo pidió, ignore este mensaje.

        { $practice }
    .voice = Hola, le llama { $practice }. Su código es { $code }. Repito, { $code }. Adiós.
