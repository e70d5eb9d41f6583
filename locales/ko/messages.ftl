# Herald 환자 메시지, ko (한국어).
# 승인된 변수만 사용합니다(locales/en-US/messages.ftl 및 src/render/mod.rs 참조).
# 진단, 약품, 검사 또는 결과는 절대 넣지 않습니다. 회신 키워드(C, R, STOP, START, HELP)는 영문 그대로 둡니다.
# 변수 뒤 조사(은/는, 을/를)를 피하도록 문장을 구성했습니다("담당:", "번으로", "에").
# Draft translation: a qualified medical translator must review it before production (locales/README.md).

appointment-confirmation =
    .sms = { $practice }: { $date } { $time } { $clinician } 진료 예약이 완료되었습니다. 확인은 C, 일정 변경은 R, 수신 거부는 STOP을 회신해 주세요.
    .subject = 예약이 완료되었습니다
    .email =
        { $date } { $time } { $clinician } 진료 예약이 완료되었습니다. 장소: { $location }

        변경하시려면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. { $date } { $time } { $clinician } 진료 예약이 완료되었습니다. 변경하시려면 { $phone }번으로 전화해 주세요. 감사합니다.

appointment-reminder =
    .sms = { $practice }: 예약 알림입니다. { $hours ->
       *[other] { $hours }시간
    } 후인 { $date } { $time }에 { $clinician } 진료 예약이 있습니다. 확인은 C, 일정 변경은 R, 수신 거부는 STOP을 회신해 주세요.
    .subject = 예약 알림
    .email =
        { $date } { $time } { $clinician } 진료 예약을 알려 드립니다. 장소: { $location }

        변경하시려면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. { $date } { $time } { $clinician } 진료 예약을 알려 드립니다. 변경하시려면 { $phone }번으로 전화해 주세요. 감사합니다.

appointment-rescheduled =
    .sms = { $practice }: { $clinician } 진료 예약이 변경되었습니다. 새 일시: { $date } { $time }. 문의: { $phone }. 수신 거부는 STOP을 회신해 주세요.
    .subject = 예약이 변경되었습니다
    .email =
        { $clinician } 진료 예약이 변경되었습니다. 새 일시: { $date } { $time }, 장소: { $location }

        문의 사항은 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. { $clinician } 진료 예약이 변경되었습니다. 새 일시는 { $date } { $time }입니다. 문의 사항은 { $phone }번으로 전화해 주세요. 감사합니다.

appointment-cancelled =
    .sms = { $practice }: { $date } { $time } 예약이 취소되었습니다. 다시 예약하시려면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요. 수신 거부는 STOP을 회신해 주세요.
    .subject = 예약이 취소되었습니다
    .email =
        { $date } { $time } 예약이 취소되었습니다.

        다시 예약하시려면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. { $date } { $time } 예약이 취소되었습니다. 다시 예약하시려면 { $phone }번으로 전화해 주세요. 감사합니다.

appointment-missed =
    .sms = { $practice }: { $date }에 뵙지 못했습니다. 새로 예약하시려면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요. 수신 거부는 STOP을 회신해 주세요.
    .subject = 예약일에 뵙지 못했습니다
    .email =
        { $date }에 뵙지 못했습니다.

        새로 예약하시려면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. { $date }에 뵙지 못했습니다. 새로 예약하시려면 { $phone }번으로 전화해 주세요. 감사합니다.

medication-refill-reminder =
    .sms = { $practice }: 처방 리필 시기가 되었을 수 있습니다. { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요. 수신 거부는 STOP을 회신해 주세요.
    .subject = 처방 리필 알림
    .email =
        처방 리필 시기가 되었을 수 있습니다.

        { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. 처방 리필 시기가 되었을 수 있습니다. { $phone }번으로 전화해 주세요. 감사합니다.

medication-ready-for-pickup =
    .sms = { $practice }: 처방약을 찾아가실 수 있습니다. 문의: { $phone }. 수신 거부는 STOP을 회신해 주세요.
    .subject = 수령 준비 완료
    .email =
        처방약을 찾아가실 수 있습니다.

        문의 사항은 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. 처방약을 찾아가실 수 있습니다. 문의 사항은 { $phone }번으로 전화해 주세요. 감사합니다.

consent-opt-in-confirmation =
    .sms = { $practice }: 예약 및 처방 관련 메시지를 주 최대 3회 받으시게 됩니다. 메시지 및 데이터 요금이 부과될 수 있습니다. 도움말은 HELP, 수신 거부는 STOP을 회신해 주세요. 약관: { $portal }
    .subject = 메시지 수신이 등록되었습니다
    .email =
        { $practice }에서 예약 및 처방 관련 메시지를 주 최대 3회 보내 드립니다.

        도움이 필요하시면 { $phone }번으로 전화해 주세요. 수신을 원하지 않으시면 STOP을 회신하시거나 { $portal }에 방문해 주세요.
    .voice = 안녕하세요, { $practice }입니다. 예약 및 처방 관련 전화를 주 최대 3회 받으시게 됩니다. 수신을 원하지 않으시면 { $phone }번으로 전화해 주세요. 감사합니다.

consent-opt-out-confirmation =
    .sms = { $practice }: 수신 거부가 완료되어 더 이상 메시지가 발송되지 않습니다. 다시 받으시려면 START를 회신해 주세요.
    .subject = 수신 거부가 완료되었습니다
    .email =
        수신 거부가 완료되어 { $practice }의 메시지가 더 이상 발송되지 않습니다.

        다시 받으시려면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.
    .voice = 안녕하세요, { $practice }입니다. 앞으로 더 이상 전화를 드리지 않습니다. 다시 받으시려면 { $phone }번으로 전화해 주세요. 감사합니다.

consent-help =
    .sms = { $practice }: 도움이 필요하시면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요. 메시지 및 데이터 요금이 부과될 수 있습니다. 수신 거부는 STOP을 회신해 주세요.
    .subject = 메시지 도움말
    .email =
        { $practice } 메시지에 관해 도움이 필요하시면 { $phone }번으로 전화하시거나 { $portal }에 방문해 주세요.

        수신을 원하지 않으시면 STOP을 회신해 주세요.
    .voice = 안녕하세요, { $practice }입니다. 도움이 필요하시면 { $phone }번으로 전화해 주세요. 감사합니다.

reply-confirmed =
    .sms = { $practice }: 회신 감사합니다. { $date } { $time } 예약이 확인되었습니다. 수신 거부는 STOP을 회신해 주세요.
    .subject = 예약이 확인되었습니다
    .email =
        회신 감사합니다. { $date } { $time } 예약이 확인되었습니다.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. { $date } { $time } 예약이 확인되었습니다. 회신해 주셔서 감사합니다.

reply-reschedule =
    .sms = { $practice }: 새 예약 시간을 선택하시려면 { $portal }에 방문하시거나 { $phone }번으로 전화해 주세요. 수신 거부는 STOP을 회신해 주세요.
    .subject = 새 예약 시간을 선택해 주세요
    .email =
        새 예약 시간을 선택하시려면 { $portal }에 방문하시거나 { $phone }번으로 전화해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. 새 예약 시간을 선택하시려면 { $phone }번으로 전화해 주세요. 감사합니다.

reply-cancel-requested =
    .sms = { $practice }: { $date } 예약 취소 요청을 받았습니다. 담당 직원이 확인해 드릴 예정입니다. 문의: { $phone }. 수신 거부는 STOP을 회신해 주세요.
    .subject = 예약 취소 요청을 받았습니다
    .email =
        { $date } 예약 취소 요청을 받았습니다. 담당 직원이 확인해 드릴 예정입니다.

        문의 사항은 { $phone }번으로 전화해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. { $date } 예약 취소 요청을 받았습니다. 담당 직원이 확인해 드릴 예정입니다. 감사합니다.

reply-received =
    .sms = { $practice }: 감사합니다. 보내 주신 메시지는 직원이 확인하겠습니다. 급한 용무는 { $phone }번으로 전화해 주세요. 수신 거부는 STOP을 회신해 주세요.
    .subject = 메시지를 받았습니다
    .email =
        감사합니다. 보내 주신 메시지는 저희 직원이 확인하겠습니다. 급한 용무는 { $phone }번으로 전화해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. 보내 주신 메시지는 저희 직원이 확인하겠습니다. 급한 용무는 { $phone }번으로 전화해 주세요. 감사합니다.

# A code confirming a number or address the patient entered on the preference
# page (issue 11 F8f): the practice and the code, nothing about the patient.

contact-code =
    .sms = { $practice }: 인증 코드는 { $code }입니다. 10분 안에 수신 설정 페이지에 입력해 주세요. 요청하지 않으셨다면 이 메시지를 무시해 주세요.
    .subject = 인증 코드 안내
    .email =
        인증 코드는 { $code }입니다. 10분 안에 수신 설정 페이지에 입력해 주세요.

        요청하지 않으셨다면 이 메시지를 무시해 주세요.

        { $practice }
    .voice = 안녕하세요, { $practice }입니다. 인증 코드는 { $code }입니다. 다시 한 번, { $code }. 감사합니다.
