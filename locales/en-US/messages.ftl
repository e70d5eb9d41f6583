# Herald patient messages, en-US. Approved variables only (see src/render/mod.rs):
# $practice $phone $portal $date $time $clinician $location $first_name $hours.
# Never a diagnosis, drug, test or result. Every SMS names the practice and says how to opt out.

appointment-confirmation =
    .sms = { $practice }: your appointment with { $clinician } on { $date } at { $time } is booked. Reply C to confirm, R to reschedule. Reply STOP to opt out.
    .subject = Your appointment is booked

appointment-reminder =
    .sms = { $hours ->
        [one] { $practice }: reminder, your appointment with { $clinician } is in { $hours } hour, at { $time }. Reply C to confirm, R to reschedule. STOP to opt out.
       *[other] { $practice }: reminder, your appointment with { $clinician } is on { $date } at { $time }. Reply C to confirm, R to reschedule. STOP to opt out.
    }
    .subject = Appointment reminder

appointment-rescheduled =
    .sms = { $practice }: your appointment with { $clinician } has moved to { $date } at { $time }. Questions? Call { $phone }. Reply STOP to opt out.
    .subject = Your appointment has moved

appointment-cancelled =
    .sms = { $practice }: your appointment on { $date } at { $time } has been cancelled. To book again call { $phone } or visit { $portal }. Reply STOP to opt out.
    .subject = Your appointment was cancelled

appointment-missed =
    .sms = { $practice }: we missed you on { $date }. To book a new visit call { $phone } or visit { $portal }. Reply STOP to opt out.
    .subject = We missed you

medication-refill-reminder =
    .sms = { $practice }: it may be time to refill a prescription. Call { $phone } or visit { $portal }. Reply STOP to opt out.
    .subject = Refill reminder

medication-ready-for-pickup =
    .sms = { $practice }: a prescription is ready for pickup. Questions? Call { $phone }. Reply STOP to opt out.
    .subject = Ready for pickup
