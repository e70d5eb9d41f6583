# Mga mensahe ng Herald para sa pasyente, tl (Tagalog).
# Mga aprubadong variable lamang (tingnan ang locales/en-US/messages.ftl at src/render/mod.rs).
# Hindi kailanman diagnosis, gamot, test o resulta. Panatilihin ang C, R, STOP, START, HELP.
# Draft translation: a qualified medical translator must review it before production (locales/README.md).
# CLDR "one" in Tagalog covers most numbers (1, 2, 3, 5, ...); "oras" does not change, so both variants read the same.

appointment-confirmation =
    .sms = { $practice }: naka-book na po ang inyong appointment kay { $clinician } sa { $date } nang { $time }. Sumagot ng C para kumpirmahin, R para baguhin ang iskedyul, STOP para huminto.
    .subject = Naka-book na ang inyong appointment
    .email =
        Naka-book na po ang inyong appointment kay { $clinician } sa { $date } nang { $time } sa { $location }.

        Para baguhin ito, tumawag sa { $phone } o bisitahin ang { $portal }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Naka-book na po ang inyong appointment kay { $clinician } sa { $date } nang { $time }. Para baguhin ito, tumawag po sa { $phone }. Paalam po.

appointment-reminder =
    .sms = { $practice }: paalala, ang inyong appointment kay { $clinician } ay sa loob ng { $hours ->
        [one] { $hours } oras
       *[other] { $hours } oras
    }, sa { $date } nang { $time }. Sumagot ng C para kumpirmahin, R para baguhin ang iskedyul, STOP para huminto.
    .subject = Paalala sa appointment
    .email =
        Paalala po ito sa inyong appointment kay { $clinician } sa { $date } nang { $time } sa { $location }.

        Para baguhin ito, tumawag sa { $phone } o bisitahin ang { $portal }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice } na may paalala sa inyong appointment kay { $clinician } sa { $date } nang { $time }. Para baguhin ito, tumawag po sa { $phone }. Paalam po.

appointment-rescheduled =
    .sms = { $practice }: inilipat na po ang inyong appointment kay { $clinician } sa { $date } nang { $time }. May tanong? Tumawag sa { $phone }. Sumagot ng STOP para huminto.
    .subject = Inilipat ang inyong appointment
    .email =
        Inilipat na po ang inyong appointment kay { $clinician } sa { $date } nang { $time } sa { $location }.

        May tanong? Tumawag sa { $phone } o bisitahin ang { $portal }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Inilipat na po ang inyong appointment kay { $clinician } sa { $date } nang { $time }. May tanong? Tumawag po sa { $phone }. Paalam po.

appointment-cancelled =
    .sms = { $practice }: kinansela na po ang inyong appointment sa { $date } nang { $time }. Para mag-book muli, tumawag sa { $phone } o bisitahin ang { $portal }. Sumagot ng STOP para huminto.
    .subject = Kinansela ang inyong appointment
    .email =
        Kinansela na po ang inyong appointment sa { $date } nang { $time }.

        Para mag-book muli, tumawag sa { $phone } o bisitahin ang { $portal }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Kinansela na po ang inyong appointment sa { $date } nang { $time }. Para mag-book muli, tumawag po sa { $phone }. Paalam po.

appointment-missed =
    .sms = { $practice }: hindi po namin kayo nakita noong { $date }. Para mag-book ng bagong appointment, tumawag sa { $phone } o bisitahin ang { $portal }. Sumagot ng STOP para huminto.
    .subject = Hindi namin kayo nakita
    .email =
        Hindi po namin kayo nakita noong { $date }.

        Para mag-book ng bagong appointment, tumawag sa { $phone } o bisitahin ang { $portal }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Hindi po namin kayo nakita noong { $date }. Para mag-book ng bagong appointment, tumawag po sa { $phone }. Paalam po.

medication-refill-reminder =
    .sms = { $practice }: maaaring oras na para mag-refill ng reseta. Tumawag sa { $phone } o bisitahin ang { $portal }. Sumagot ng STOP para huminto.
    .subject = Paalala sa pag-refill ng reseta
    .email =
        Maaaring oras na para mag-refill ng reseta.

        Tumawag sa { $phone } o bisitahin ang { $portal }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Maaaring oras na para mag-refill ng reseta. Pakitawagan po ang { $phone }. Paalam po.

medication-ready-for-pickup =
    .sms = { $practice }: may reseta pong handa nang kunin. May tanong? Tumawag sa { $phone }. Sumagot ng STOP para huminto.
    .subject = Handa nang kunin
    .email =
        May reseta pong handa nang kunin.

        May tanong? Tumawag sa { $phone } o bisitahin ang { $portal }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. May reseta pong handa nang kunin. May tanong? Tumawag po sa { $phone }. Paalam po.

consent-opt-in-confirmation =
    .sms = { $practice }: makatatanggap kayo ng mga mensahe tungkol sa appointment at reseta, hanggang 3 bawat linggo. Maaaring may singil sa mensahe at data. Sumagot ng HELP para sa tulong, STOP para huminto. Mga tuntunin: { $portal }
    .subject = Naka-sign up na kayo sa mga mensahe
    .email =
        Makatatanggap kayo ng mga mensahe tungkol sa appointment at reseta mula sa { $practice }, hanggang 3 bawat linggo.

        Para sa tulong, tumawag sa { $phone }. Para huminto, sumagot ng STOP o bisitahin ang { $portal }.
    .voice = Magandang araw, ito po ang { $practice }. Makatatanggap kayo ng mga tawag tungkol sa appointment at reseta, hanggang 3 bawat linggo. Para huminto, tumawag po sa { $phone }. Paalam po.

consent-opt-out-confirmation =
    .sms = { $practice }: naka-unsubscribe na kayo at hindi na makatatanggap ng mga mensahe. Sumagot ng START para mag-subscribe muli.
    .subject = Naka-unsubscribe na kayo
    .email =
        Naka-unsubscribe na kayo at hindi na makatatanggap ng mga mensahe mula sa { $practice }.

        Para mag-subscribe muli, tumawag sa { $phone } o bisitahin ang { $portal }.
    .voice = Magandang araw, ito po ang { $practice }. Hindi na kayo makatatanggap ng mga tawag. Para mag-subscribe muli, tumawag po sa { $phone }. Paalam po.

consent-help =
    .sms = { $practice }: para sa tulong, tumawag sa { $phone } o bisitahin ang { $portal }. Maaaring may singil sa mensahe at data. Sumagot ng STOP para huminto.
    .subject = Tulong sa mga mensahe
    .email =
        Para sa tulong sa mga mensahe mula sa { $practice }, tumawag sa { $phone } o bisitahin ang { $portal }.

        Para huminto, sumagot ng STOP.
    .voice = Magandang araw, ito po ang { $practice }. Para sa tulong, tumawag po sa { $phone }. Paalam po.

reply-confirmed =
    .sms = { $practice }: salamat po, kumpirmado na ang inyong appointment sa { $date } nang { $time }. Sumagot ng STOP para huminto.
    .subject = Kumpirmado na ang inyong appointment
    .email =
        Salamat po, kumpirmado na ang inyong appointment sa { $date } nang { $time }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Salamat po, kumpirmado na ang inyong appointment sa { $date } nang { $time }. Paalam po.

reply-reschedule =
    .sms = { $practice }: para pumili ng bagong oras, bisitahin ang { $portal } o tumawag sa { $phone }. Sumagot ng STOP para huminto.
    .subject = Pumili ng bagong oras
    .email =
        Para pumili ng bagong oras para sa inyong appointment, bisitahin ang { $portal } o tumawag sa { $phone }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Para pumili ng bagong oras, tumawag po sa { $phone }. Paalam po.

reply-cancel-requested =
    .sms = { $practice }: natanggap po namin ang kahilingang kanselahin ang appointment sa { $date }. Kukumpirmahin ito ng aming staff. May tanong? Tumawag sa { $phone }. Sumagot ng STOP para huminto.
    .subject = Natanggap namin ang inyong kahilingang magkansela
    .email =
        Natanggap na po namin ang inyong kahilingang kanselahin ang inyong appointment sa { $date }. Kukumpirmahin ito ng aming staff.

        May tanong? Tumawag sa { $phone }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Natanggap na po namin ang inyong kahilingang kanselahin ang inyong appointment sa { $date }. Kukumpirmahin ito ng aming staff. Paalam po.

reply-received =
    .sms = { $practice }: salamat po, babasahin ng aming staff ang inyong mensahe. Kung apurahan, tumawag sa { $phone }. Sumagot ng STOP para huminto.
    .subject = Natanggap namin ang inyong mensahe
    .email =
        Salamat po, babasahin ng isa sa aming staff ang inyong mensahe. Kung apurahan, tumawag sa { $phone }.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Salamat po, babasahin ng isa sa aming staff ang inyong mensahe. Kung apurahan, tumawag po sa { $phone }. Paalam po.

# A code confirming a number or address the patient entered on the preference
# page (issue 11 F8f): the practice and the code, nothing about the patient.

contact-code =
    .sms = { $practice }: ang inyong code ay { $code }. Ilagay ito sa preferences page sa loob ng 10 minuto. Kung hindi kayo humiling nito, huwag pansinin ang mensaheng ito.
    .subject = Ang inyong confirmation code
    .email =
        Ang inyong code ay { $code }. Ilagay ito sa preferences page sa loob ng 10 minuto.

        Kung hindi kayo humiling nito, huwag pansinin ang mensaheng ito.

        { $practice }
    .voice = Magandang araw, ito po ang { $practice }. Ang inyong code ay { $code }. Uulitin ko, { $code }. Paalam po.
