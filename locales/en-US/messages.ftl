# Herald patient messages, en-US.
#
# Approved variables only (src/render/mod.rs, APPROVED_VARIABLES):
#   $practice $phone $portal $date $time $clinician $location $first_name $hours
#   ($code only in contact-code)
# $date and $time arrive already formatted for the locale in the appointment's
# time zone; $hours is a number (plural selection follows the locale).
# Never a diagnosis, drug, test, result or department. Every SMS names the
# practice and says how to opt out (TCPA T2, CTIA C1-C3).
#
# Every message has four attributes:
#   .sms      the text message (keep it short: segments cost money, messaging.md C6)
#   .subject  the email subject
#   .email    the plain-text email body (the HTML part is built from it)
#   .voice    what a voice call says (TwiML <Say>), no links

appointment-confirmation =
    .sms = { $practice }: your appointment with { $clinician } on { $date } at { $time } is booked. Reply C to confirm, R to reschedule, STOP to opt out.
    .subject = Your appointment is booked
    .email =
        Your appointment with { $clinician } on { $date } at { $time } at { $location } is booked.

        To change it, call { $phone } or visit { $portal }.

        { $practice }
    .voice = Hello, this is { $practice }. Your appointment with { $clinician } on { $date } at { $time } is booked. To change it, call { $phone }. Goodbye.

appointment-reminder =
    .sms = { $practice }: reminder, your appointment with { $clinician } is in { $hours ->
        [one] { $hours } hour
       *[other] { $hours } hours
    }, on { $date } at { $time }. Reply C to confirm, R to reschedule, STOP to opt out.
    .subject = Appointment reminder
    .email =
        This is a reminder of your appointment with { $clinician } on { $date } at { $time } at { $location }.

        To change it, call { $phone } or visit { $portal }.

        { $practice }
    .voice = Hello, this is { $practice } with a reminder of your appointment with { $clinician } on { $date } at { $time }. To change it, call { $phone }. Goodbye.

appointment-rescheduled =
    .sms = { $practice }: your appointment with { $clinician } has moved to { $date } at { $time }. Questions? Call { $phone }. Reply STOP to opt out.
    .subject = Your appointment has moved
    .email =
        Your appointment with { $clinician } has moved to { $date } at { $time } at { $location }.

        Questions? Call { $phone } or visit { $portal }.

        { $practice }
    .voice = Hello, this is { $practice }. Your appointment with { $clinician } has moved to { $date } at { $time }. Questions? Call { $phone }. Goodbye.

appointment-cancelled =
    .sms = { $practice }: your appointment on { $date } at { $time } has been cancelled. To book again call { $phone } or visit { $portal }. Reply STOP to opt out.
    .subject = Your appointment was cancelled
    .email =
        Your appointment on { $date } at { $time } has been cancelled.

        To book again, call { $phone } or visit { $portal }.

        { $practice }
    .voice = Hello, this is { $practice }. Your appointment on { $date } at { $time } has been cancelled. To book again, call { $phone }. Goodbye.

appointment-missed =
    .sms = { $practice }: we missed you on { $date }. To book a new visit call { $phone } or visit { $portal }. Reply STOP to opt out.
    .subject = We missed you
    .email =
        We missed you on { $date }.

        To book a new visit, call { $phone } or visit { $portal }.

        { $practice }
    .voice = Hello, this is { $practice }. We missed you on { $date }. To book a new visit, call { $phone }. Goodbye.

medication-refill-reminder =
    .sms = { $practice }: it may be time to refill a prescription. Call { $phone } or visit { $portal }. Reply STOP to opt out.
    .subject = Refill reminder
    .email =
        It may be time to refill a prescription.

        Call { $phone } or visit { $portal }.

        { $practice }
    .voice = Hello, this is { $practice }. It may be time to refill a prescription. Please call { $phone }. Goodbye.

medication-ready-for-pickup =
    .sms = { $practice }: a prescription is ready for pickup. Questions? Call { $phone }. Reply STOP to opt out.
    .subject = Ready for pickup
    .email =
        A prescription is ready for pickup.

        Questions? Call { $phone } or visit { $portal }.

        { $practice }
    .voice = Hello, this is { $practice }. A prescription is ready for pickup. Questions? Call { $phone }. Goodbye.

# Consent messages (CTIA C1-C3, TCPA T9). Sent at most once per change.

consent-opt-in-confirmation =
    .sms = { $practice }: you will get appointment and prescription messages, up to 3 a week. Msg & data rates may apply. Reply HELP for help, STOP to opt out. Terms: { $portal }
    .subject = You are signed up for messages
    .email =
        You will get appointment and prescription messages from { $practice }, up to 3 a week.

        For help call { $phone }. To stop, reply STOP or visit { $portal }.
    .voice = Hello, this is { $practice }. You will get appointment and prescription calls, up to 3 a week. To stop, call { $phone }. Goodbye.

consent-opt-out-confirmation =
    .sms = { $practice }: you are unsubscribed and will get no more messages. Reply START to resubscribe.
    .subject = You are unsubscribed
    .email =
        You are unsubscribed and will get no more messages from { $practice }.

        To resubscribe, call { $phone } or visit { $portal }.
    .voice = Hello, this is { $practice }. You will get no more calls. To resubscribe, call { $phone }. Goodbye.

consent-help =
    .sms = { $practice }: for help call { $phone } or visit { $portal }. Msg & data rates may apply. Reply STOP to opt out.
    .subject = Help with messages
    .email =
        For help with messages from { $practice }, call { $phone } or visit { $portal }.

        To stop, reply STOP.
    .voice = Hello, this is { $practice }. For help, call { $phone }. Goodbye.

# Replies to a patient's text (two-way; issue 5 §4). Consent still applies;
# caps and quiet hours do not (the patient just wrote).

reply-confirmed =
    .sms = { $practice }: thank you, your appointment on { $date } at { $time } is confirmed. Reply STOP to opt out.
    .subject = Your appointment is confirmed
    .email =
        Thank you, your appointment on { $date } at { $time } is confirmed.

        { $practice }
    .voice = Hello, this is { $practice }. Thank you, your appointment on { $date } at { $time } is confirmed. Goodbye.

reply-reschedule =
    .sms = { $practice }: to choose a new time, visit { $portal } or call { $phone }. Reply STOP to opt out.
    .subject = Choose a new time
    .email =
        To choose a new time for your appointment, visit { $portal } or call { $phone }.

        { $practice }
    .voice = Hello, this is { $practice }. To choose a new time, please call { $phone }. Goodbye.

reply-cancel-requested =
    .sms = { $practice }: we received your request to cancel your appointment on { $date }. Our staff will confirm. Questions? Call { $phone }. Reply STOP to opt out.
    .subject = We received your cancellation request
    .email =
        We received your request to cancel your appointment on { $date }. Our staff will confirm.

        Questions? Call { $phone }.

        { $practice }
    .voice = Hello, this is { $practice }. We received your request to cancel your appointment on { $date }. Our staff will confirm. Goodbye.

reply-received =
    .sms = { $practice }: thank you, a member of our staff will read your message. For anything urgent call { $phone }. Reply STOP to opt out.
    .subject = We received your message
    .email =
        Thank you, a member of our staff will read your message. For anything urgent, call { $phone }.

        { $practice }
    .voice = Hello, this is { $practice }. Thank you, a member of our staff will read your message. For anything urgent, call { $phone }. Goodbye.

# A code confirming a number or address the patient entered on the preference
# page (issue 11 F8f): the practice and the code, nothing about the patient.

contact-code =
    .sms = { $practice }: your code is { $code }. Enter it on the preferences page within 10 minutes. If you did not ask for it, ignore this message.
    .subject = Your confirmation code
    .email =
        Your code is { $code }. Enter it on the preferences page within 10 minutes.

        If you did not ask for it, ignore this message.

        { $practice }
    .voice = Hello, this is { $practice }. Your code is { $code }. Again, { $code }. Goodbye.
