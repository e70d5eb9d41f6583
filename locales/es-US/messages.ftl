# Mensajes de Herald para pacientes, es-US. Solo variables aprobadas (ver src/render/mod.rs).

appointment-confirmation =
    .sms = { $practice }: su cita con { $clinician } el { $date } a las { $time } está programada. Responda C para confirmar, R para cambiarla. Responda STOP para no recibir más.
    .subject = Su cita está programada

appointment-reminder =
    .sms = { $hours ->
        [one] { $practice }: recordatorio, su cita con { $clinician } es en { $hours } hora, a las { $time }. Responda C para confirmar, R para cambiarla. STOP para cancelar.
       *[other] { $practice }: recordatorio, su cita con { $clinician } es el { $date } a las { $time }. Responda C para confirmar, R para cambiarla. STOP para cancelar.
    }
    .subject = Recordatorio de cita

appointment-rescheduled =
    .sms = { $practice }: su cita con { $clinician } cambió al { $date } a las { $time }. ¿Preguntas? Llame al { $phone }. Responda STOP para no recibir más.
    .subject = Su cita cambió

appointment-cancelled =
    .sms = { $practice }: su cita del { $date } a las { $time } fue cancelada. Para programar otra llame al { $phone } o visite { $portal }. Responda STOP para no recibir más.
    .subject = Su cita fue cancelada

appointment-missed =
    .sms = { $practice }: lo extrañamos el { $date }. Para una nueva cita llame al { $phone } o visite { $portal }. Responda STOP para no recibir más.
    .subject = Lo extrañamos

medication-refill-reminder =
    .sms = { $practice }: puede ser hora de surtir una receta. Llame al { $phone } o visite { $portal }. Responda STOP para no recibir más.
    .subject = Recordatorio para surtir

medication-ready-for-pickup =
    .sms = { $practice }: una receta está lista para recoger. ¿Preguntas? Llame al { $phone }. Responda STOP para no recibir más.
    .subject = Lista para recoger
